/** A YAML/JSON mapping (not null, not a list): the shape every config walk checks for. */
export const isMap = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
