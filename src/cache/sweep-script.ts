import { LUA_SLOT_HEAD_LITERAL } from '../keys/key-patterns.js';

/**
 * The server-side half of a sweep: one call scans a few SCAN pages of the node
 * it runs on, tests each key against the rules filed under the key's prefix
 * (text up to its first `:`; then the rules with no prefix), and counts,
 * deletes, returns or profiles the keys a rule claims. Key names never cross
 * the wire unless asked for (collect), so counting and deleting cost about a
 * bare SCAN pass, and the client's memory stays flat whatever the keyspace.
 *
 * It stops after `budget_us` microseconds of work (having taken at least one
 * page) or at the end of its walk (the cursor back at 0, or for the low lane
 * of two, the first odd cursor), so no single call blocks the server long (the
 * goal: none over 5 ms). The SCAN carries the request's MATCH glob, or the
 * rules' prefilter, so the server drops keys no rule can claim before the
 * script sees them.
 * Lua strings are bytes: keys that are not UTF-8 are matched and deleted exactly.
 *
 * Actions: count, unlink (one key per UNLINK: a Cluster node refuses keys of
 * different slots in one call, and a limit is exact), unlink-batched (one
 * UNLINK per page, every family's keys in it: standalone and Sentinel, no
 * limit), collect, profile.
 * ARGV: action, cursor, count, match ('' = none), budget_us, limit (-1 = none),
 *       lane ('low' = stop where the cursor turns odd, see ioredis-store.ts; '' = to the end),
 *       nrules, then per rule: dispatch prefix, Lua pattern of the key's bytes after that
 *       prefix (the tenant captured for collect and profile), group (1-based).
 * Reply: { cursor, scanned, limit_left, {count per group}, entries, handed } where
 * entries are key, group, tenant triples (collect), or for profile one string
 * with a line per claimed key: `tenant TAB group TAB class TAB bytes LF`, class
 * 1 = TTL under a minute, 2 = under an hour, 3 = later, 4 = none, 0 = the key
 * went between SCAN and PTTL. One string, not a table of rows: building and
 * sending a million small Lua values cost more than the MEMORY USAGE and PTTL
 * calls themselves (measured: 4.5 s of server time for 1M keys, now 3.1 s).
 * A tenant slot never holds TAB or LF (see src/keys/key-patterns.ts).
 * `handed` are key, group, tenant triples the script could not unlink or
 * profile on this node (a Cluster slot being imported, keys an ACL refuses:
 * see `hand`), for the client to do through the cluster's redirections, or to
 * be refused in the server's own words; they are not in the counts.
 */
export const SWEEP_LUA = `
-- Redis 5-6 need effects replication before writing after SCAN/TIME; a no-op on 7.
if redis.replicate_commands then redis.replicate_commands() end
local action = ARGV[1]
local cursor = ARGV[2]
local count = tonumber(ARGV[3])
local match = ARGV[4]
local budget = tonumber(ARGV[5])
local limit = tonumber(ARGV[6])
local low = ARGV[7] == 'low'
local nrules = tonumber(ARGV[8])
local byprefix, generic, ngroups = {}, {}, 0
-- Count and unlink need a key's family only: its rules are patterns without a capture.
local plain = action == 'count' or action == 'unlink' or action == 'unlink-batched'
-- Any tenant's slot, anchored: the start of the rules a family's default patterns give (key-patterns.ts).
local SLOT_HEAD = ${LUA_SLOT_HEAD_LITERAL}
for i = 0, nrules - 1 do
  local d, p, g = ARGV[9 + i * 3], ARGV[10 + i * 3], tonumber(ARGV[11 + i * 3])
  -- Its shape, for a key's family alone (count and unlink): 1 = the slot to the key's end
  -- ('{tenant}'), 2 = the slot then ':' ('{tenant}:*'), nil = any other pattern.
  local shape
  if plain then
    if p == SLOT_HEAD .. '$' then shape = 1 elseif p == SLOT_HEAD .. ':.*$' then shape = 2 end
  end
  -- The rule's place in declaration order: where two rules claim a key, the first declared wins (as on the client).
  local rule = { p, g, i, shape }
  if d == '' then
    generic[#generic + 1] = rule
  else
    local list = byprefix[d]
    if not list then list = {}; byprefix[d] = list end
    list[#list + 1] = rule
  end
  if g > ngroups then ngroups = g end
end
-- A prefix whose rules all have a shape is classified by one match of the slot and a look at the
-- byte after it, not one pattern call per rule tried (measured in Redis 7.0's Lua: 1.0 -> 0.84 us a
-- key of the defaults; a count's server time -3%). The same answer: the slot's set holds no ':', so
-- the longest run of it decides both shapes.
-- The two shapes exclude each other, so the first rule of each shape is the one that wins its keys:
-- g1, i1 (its group and place) for the first, g2, i2 for the second.
for _, list in pairs(byprefix) do
  list.fast = true
  for j = 1, #list do
    local rule = list[j]
    local shape = rule[4]
    if not shape then
      list.fast = false
    elseif shape == 1 and not list.g1 then
      list.g1, list.i1 = rule[2], rule[3]
    elseif shape == 2 and not list.g2 then
      list.g2, list.i2 = rule[2], rule[3]
    end
  end
end
local counts = {}
for g = 1, ngroups do counts[g] = 0 end
local smatch, find, sub, byte, call, rpcall = string.match, string.find, string.sub, string.byte, redis.call, redis.pcall
-- Those find positions (no new string); collect and profile match, the tenant captured.
local claim = plain and find or smatch
local entries = {}
-- Profile lines are built in parts and joined once; the TAB group TAB class TAB pieces are made once.
local parts, np, codes = {}, 0, {}
if action == 'profile' then
  for g = 1, ngroups do for c = 0, 4 do codes[g * 5 + c] = '\\t' .. g .. '\\t' .. c .. '\\t' end end
end
local scanned = 0
-- Keys this node may not touch from a script: a Cluster node importing a slot holds the keys
-- already moved, but serves them only to a client that says ASKING; an ACL may allow some families'
-- keys only (a refusal raised out of the script hid the keys it had deleted). The client acts on them.
local handed = {}
local function hand(k, g, tenant)
  handed[#handed + 1] = k; handed[#handed + 1] = g; handed[#handed + 1] = tenant
end

local function scan(from, n)
  if match ~= '' then return call('SCAN', from, 'MATCH', match, 'COUNT', n) end
  return call('SCAN', from, 'COUNT', n)
end
-- The last decimal digit's byte has the cursor's parity.
local function odd(c) return byte(c, -1) % 2 == 1 end
-- A page of the low lane that returns this cursor visited buckets of the high half: an odd
-- cursor after its first bucket ("1"), or "0" (it ran through the half to the end).
local function past(c) return c == '0' or (odd(c) and c ~= '1') end

-- MEMORY USAGE walks a key's elements up to SAMPLES (SAMPLES 0: all of them; 130 ms for a hash of
-- a million fields, a call blocking the server). Inline, a profile samples INLINE_SAMPLES: exact for
-- a string, a compact encoding, and an aggregate of at most that many elements. A bigger aggregate is
-- handed to the client, which measures it in a command of its own with a larger, still bounded,
-- sample (PROFILE_SAMPLES in ioredis-store.ts). Only a key of BIG_BYTES or more can be one: an
-- aggregate of INLINE_SAMPLES + 1 elements in a hashtable, skiplist, quicklist or stream takes more
-- (65 one-byte set members take 3.7 KB, a list of 65 one-entry nodes 3.7 KB). Below it, no further call.
local INLINE_SAMPLES, BIG_BYTES = '64', 2048
local COMPACT = { raw = true, embstr = true, int = true, listpack = true, listpackex = true, ziplist = true, intset = true }
local LENGTH = { hash = 'HLEN', set = 'SCARD', zset = 'ZCARD', list = 'LLEN', stream = 'XLEN' }
-- Whether the inline sample covered every element of the key: a string or a compact encoding, or an
-- aggregate no longer than the sample. OBJECT refused (an ACL): TYPE and the length decide. Neither
-- readable: no, and the client measures it.
local function sampledWhole(k)
  local e = rpcall('OBJECT', 'ENCODING', k)
  if type(e) == 'string' and COMPACT[e] then return true end
  local t = rpcall('TYPE', k)
  t = type(t) == 'table' and t.ok or t
  if t == 'string' then return true end
  local length = LENGTH[t]
  if not length then return false end
  local n = rpcall(length, k)
  return type(n) == 'number' and n <= tonumber(INLINE_SAMPLES)
end

-- Classifies one page of keys and acts on the ones a rule claims.
local function take(keys)
  scanned = scanned + #keys
  -- unlink-batched: the page's claimed keys and their groups (counted as claimed, taken back if not deleted).
  local batch, groups, nb = {}, {}, 0
  for i = 1, #keys do
    local k = keys[i]
    local g, tenant
    local c = find(k, ':', 1, true)
    local list = c and byprefix[sub(k, 1, c)]
    -- A rule filed under a prefix is a pattern of the bytes after it: matched from c + 1.
    local first
    if list and list.fast then
      local _, e = find(k, SLOT_HEAD, c + 1)
      if e then
        local after = byte(k, e + 1)
        if not after then g, first = list.g1, list.i1 elseif after == 58 then g, first = list.g2, list.i2 end
      end
    elseif list then
      for j = 1, #list do
        local rule = list[j]
        local m = claim(k, rule[1], c + 1)
        if m then g = rule[2]; tenant = m; first = rule[3]; break end
      end
    end
    -- Rules with no prefix (none among the defaults): one declared before the rule that matched wins.
    for j = 1, #generic do
      local rule = generic[j]
      if first and rule[3] > first then break end
      local m = claim(k, rule[1])
      if m then g = rule[2]; tenant = m; break end
    end
    if g then
      if action == 'count' then
        counts[g] = counts[g] + 1
      elseif action == 'unlink-batched' then
        nb = nb + 1
        batch[nb] = k; groups[nb] = g
        counts[g] = counts[g] + 1
      elseif action == 'unlink' then
        if limit ~= 0 then
          local n = rpcall('UNLINK', k)
          if type(n) == 'table' then
            hand(k, g, '')
          else
            counts[g] = counts[g] + n
            if limit > 0 then limit = limit - n end
          end
        end
      elseif action == 'collect' then
        counts[g] = counts[g] + 1
        entries[#entries + 1] = k
        entries[#entries + 1] = g
        entries[#entries + 1] = tenant
      else
        local bytes = rpcall('MEMORY', 'USAGE', k, 'SAMPLES', INLINE_SAMPLES) or 0
        if type(bytes) == 'table' or (bytes >= BIG_BYTES and not sampledWhole(k)) then
          hand(k, g, tenant)
        else
          counts[g] = counts[g] + 1
          local ttl = call('PTTL', k)
          local c = 0
          if ttl == -1 then c = 4
          elseif ttl >= 0 and ttl < 60000 then c = 1
          elseif ttl >= 0 and ttl < 3600000 then c = 2
          elseif ttl >= 0 then c = 3 end
          np = np + 1; parts[np] = tenant
          np = np + 1; parts[np] = codes[g * 5 + c]
          np = np + 1; parts[np] = bytes
          np = np + 1; parts[np] = '\\n'
        end
      end
    end
  end
  -- One UNLINK per page (not per key, nor per family: 80,000 calls of ~12 keys for 1M keys took ~10%
  -- of the pass) where keys of many slots may go together. A page holds each key once, and every key
  -- it returned is still there: the script runs alone, on a clock frozen at its start (none expires),
  -- so UNLINK deletes them all and each family's count is its keys in the page. A refusal (an ACL
  -- allowing some families only) refuses the whole call: then one UNLINK per family, as the client
  -- would be refused per key.
  if nb == 0 then return end
  local n = rpcall('UNLINK', unpack(batch))
  if type(n) ~= 'table' then
    -- (Fewer deleted than sent, never seen on 7.0 with keys added and expiring under a sweep: the total is still
    -- UNLINK's, the split then inexact, the shortfall taken from the groups of the page's last keys.)
    for i = n + 1, nb do counts[groups[i]] = counts[groups[i]] - 1 end
    return
  end
  local lists = {}
  for i = 1, nb do
    local g = groups[i]
    counts[g] = counts[g] - 1
    local list = lists[g]
    if not list then list = {}; lists[g] = list end
    list[#list + 1] = batch[i]
  end
  for g, list in pairs(lists) do
    local m = rpcall('UNLINK', unpack(list))
    if type(m) == 'table' then
      for i = 1, #list do hand(list[i], g, '') end
    else
      counts[g] = counts[g] + m
    end
  end
end

local t = call('TIME')
local started = t[1] * 1000000 + t[2]
local elapsed = 0
-- A call always moves on (takes a page) or ends its lane before it stops for the budget:
-- the cursor it returns must never be the one it was given (for the low lane, "0" means done).
local moved, ended = false, false
repeat
  local page = scan(cursor, count)
  if low and past(page[1]) then
    -- This page ran into the high lane's half (see Lane in ioredis-store.ts): not taken.
    -- Smaller pages from the same cursor until one stops short of the half (at most
    -- log2(count) tries); a single bucket (COUNT 1) past it is this lane's end, and its
    -- keys are the other lane's.
    if count > 1 then
      count = math.floor(count / 2)
    else
      cursor = page[1]
      ended = true
    end
  else
    cursor = page[1]
    take(page[2])
    moved = true
    ended = cursor == '0' or (low and odd(cursor))
  end
  t = call('TIME')
  elapsed = t[1] * 1000000 + t[2] - started
until ended or (moved and elapsed >= budget) or limit == 0
if action == 'profile' then entries = table.concat(parts) end
return { cursor, scanned, limit, counts, entries, handed }
`;

/** The server's clock (TIME), asked of the node that holds KEYS[1] (a Cluster routes a script by its key). */
export const TIME_AT_KEY_LUA = `return redis.call('TIME')`;

/**
 * A cache fill's SET that takes effect only if the server runs it by
 * ARGV[3], a deadline on the server's own clock in microseconds: 1 when written, 0 when run too late. A
 * SET the client gave up on (no answer within its timeout: the server or the path to it stalled) may still
 * run when the stall ends; bytes sent cannot be called back (tested: a connection reset while the server is
 * stopped still has its command run when it resumes). Run late, a fill could put back a value a write had
 * invalidated meanwhile (a probe: a suspended business granted until the TTL). 2: the key holds another
 * type, nothing written (the client's set frees it in the background). ARGV: value, TTL in
 * seconds, deadline: the same node's clock (TIME_AT_KEY_LUA) when the fill began, plus the client's timeout,
 * so no clock of another node or of the client is compared with it. ARGV must be sent after that reply.
 */
export const SET_BY_DEADLINE_LUA = `
-- Redis 5-6 need effects replication before writing after TIME; a no-op on 7.
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
if tonumber(t[1]) * 1000000 + tonumber(t[2]) > tonumber(ARGV[3]) then return 0 end
-- A key of another type (a big hash) is the client's to free in the background (UNLINK, then SET: the
-- adapter's set). Not here: an UNLINK as the script's first write passed Redis's memory check, and the SET
-- after it was then never refused under maxmemory with noeviction (a review: fills written past the limit).
local kind = redis.call('TYPE', KEYS[1])
kind = type(kind) == 'table' and kind.ok or kind
if kind ~= 'string' and kind ~= 'none' then return 2 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
`;

/**
 * UNLINK KEYS[i] only while it holds what was read: 1 or 0 per key (a key of another type is left: 0).
 * ARGV per key, four: `F`, the value (compared whole); or for a value over SAMPLED_COMPARE_BYTES, `S`, its
 * first and last bytes and its length in bytes (STRLEN and two GETRANGEs, bounded work: a 10 MB value sent
 * back whole took 51 ms of server in one call). A value rewritten with the same length, head and tail is
 * taken for the one read and deleted: a cache miss, never a stale entry kept.
 */
export const UNLINK_IF_LUA = `
local call, pcall, out = redis.call, redis.pcall, {}
for i = 1, #KEYS do
  local a = (i - 1) * 4
  local mode, v, tail, len = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], tonumber(ARGV[a + 4])
  local same
  if mode == 'F' then
    same = pcall('GET', KEYS[i]) == v
  else
    same = pcall('STRLEN', KEYS[i]) == len and pcall('GETRANGE', KEYS[i], 0, #v - 1) == v and pcall('GETRANGE', KEYS[i], -#tail, -1) == tail
  end
  if same then out[i] = call('UNLINK', KEYS[i]) else out[i] = 0 end
end
return out
`;

/**
 * One single-key command (ARGV[1]: GET, UNLINK or EXISTS) on each of KEYS, the
 * replies in order: what a pipeline of one command per key gives, in one call.
 * A pipeline of 20,000 commands (a migration invalidating 10,000 tenants)
 * leaves 20,000 command objects in flight that outlive the young generation:
 * ~110 MB of garbage in the old one, measured. Batches of 1,000 keys run ~1 ms.
 */
export const EACH_KEY_LUA = `
local cmd, call, pcall, out = ARGV[1], redis.call, redis.pcall, {}
if cmd == 'GET' then
  -- A key of another type is a miss (nil), as MGET has it; any other error still fails the call.
  for i = 1, #KEYS do
    local v = pcall('GET', KEYS[i])
    if type(v) == 'table' and v.err then
      if string.sub(v.err, 1, 9) ~= 'WRONGTYPE' then return v end
      v = false
    end
    out[i] = v
  end
  return out
end
-- A key the server refuses (an ACL allowing some key patterns only) is -1, the others done: one
-- refusal raised out of the script hid the keys it had already deleted (the run said "deleted 0").
for i = 1, #KEYS do
  local r = pcall(cmd, KEYS[i])
  if type(r) == 'table' and r.err then out[i] = -1 else out[i] = r end
end
return out
`;

/**
 * A read-only script's commands (Redis 7): the server runs them while writes are paused (CLIENT PAUSE
 * WRITE, as a failover does), where EVAL and EVALSHA wait with the writes (they may write: counting, dry
 * runs and verify timed out there while plain reads answered), and when it is out of memory. A server
 * that does not know them (before 7) or an ACL that does not allow them: the plain commands.
 */
export const READ_ONLY_SCRIPT_COMMANDS = { bySha: 'EVALSHA_RO', whole: 'EVAL_RO' } as const;

/** The read-only script commands are unknown there, or not allowed to this user. */
export const readOnlyScriptRefused = (message: string): boolean => /^(ERR unknown command|NOPERM)\b/i.test(message);

/** Values over this many bytes are compared by length, head and tail (UNLINK_IF_LUA's `S`). */
export const SAMPLED_COMPARE_BYTES = 65_536;
/** The head and the tail compared of such a value. */
const SAMPLE_BYTES = 4096;

/** UNLINK_IF_LUA's four arguments for a value read (a JS string, sent as UTF-8). */
export function unlinkIfArgs(value: string): Array<string | Buffer> {
  // At most 3 bytes per UTF-16 unit: most values are told small without encoding them.
  if (value.length * 3 <= SAMPLED_COMPARE_BYTES) return ['F', value, '', ''];
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length <= SAMPLED_COMPARE_BYTES) return ['F', value, '', ''];
  return ['S', bytes.subarray(0, SAMPLE_BYTES), bytes.subarray(bytes.length - SAMPLE_BYTES), String(bytes.length)];
}
