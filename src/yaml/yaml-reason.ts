/**
 * js-yaml's reason, without the text of a tag or an alias it names: an unquoted value starting with `!` or `*`
 * (a generated password often does) is read as one, and the reason quoted it (`unknown tag !<!Xk9pw>`) in
 * every report of the file.
 */
export function yamlReasonShown(reason: string): string {
  return reason
    .replace(/unknown (?:scalar |mapping |sequence )?tag !<[^>]*>/g, 'unknown tag: an unquoted value starting with "!" is a YAML tag (quote the value)')
    .replace(/undeclared tag handle "[^"]*"/g, 'undeclared tag handle: an unquoted value starting with "!" is a YAML tag (quote the value)')
    .replace(/unidentified alias "[^"]*"/g, 'unidentified alias: an unquoted value starting with "*" is a YAML alias (quote the value)')
    // Any other message naming a tag ("unacceptable node kind for !<…> tag").
    .replace(/!<[^>]*>/g, '!<…>');
}
