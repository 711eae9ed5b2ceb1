import { readFileSync } from 'node:fs';
import { connect as connectSocket, isIP } from 'node:net';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { BackendUnavailableError, PartialFailureError, describeError, throwIfAborted, type BackendReason, type BatchProgress } from '../errors.js';
import { keyDispatchPrefix } from '../keys/key-patterns.js';
import { describeSlots, placeAnswers, refusedCommand, unlinkStillHolding, type CacheStore, type ClaimedKey, type ProfileBatch, type SweepBatch, type SweepRequest, type SweepResult, type TtlClass } from './cache-store.js';
import { seedShare, unreadableTlsFile, type RedisSpec } from './redis-spec.js';
import { withDeadline } from './deadline.js';
import { failedOverError, isNamedMaster, plainAddress, promotedError, SentinelWatch, unreplicatedError, type ReplicasSeenBy } from './sentinel-check.js';
import { EACH_KEY_LUA, READ_ONLY_SCRIPT_COMMANDS, readOnlyScriptRefused, SET_BY_DEADLINE_LUA, SWEEP_LUA, TIME_AT_KEY_LUA, UNLINK_IF_LUA, unlinkIfArgs } from './sweep-script.js';
import { sha1Hex } from '../node-crypto.js';

/** Keys per client-side SCAN page (buckets visited, not matches returned: PITFALLS). */
export const SCAN_COUNT = 1000;
/**
 * Inside the sweep script: small pages, looped until the time budget is spent.
 * With two lanes on a server (see Lane) the server is never idle between calls,
 * so short calls cost little, and they leave room for the machine's own stalls
 * (~4 ms on this VM, single lane or two) under the 5 ms SLOWLOG goal. Measured
 * on 2M keys, five passes each: 1 ms calls counted as fast as 0.5 ms ones and
 * logged 4 calls over 4 ms (max 5.3 ms), 0.5 ms calls 5 (max 4.5 ms). A
 * profile's page costs several times a count's (a MEMORY USAGE and a PTTL per
 * key, and a line of reply): 0.5 ms calls profile as fast as 1 ms ones, while
 * 0.25 ms calls were ~8% slower and no better in the SLOWLOG.
 */
const SCRIPT_SCAN_COUNT = 250;
const SCRIPT_MATCH_SCAN_COUNT = 1000;
const LANE_BUDGET_US = 500;
/** How long a Cluster node's error is taken as the reason of a failure that does not name its node. */
const NODE_ERROR_RECENT_MS = 30_000;
/** Failures that name no node of their own (ioredis's words for a lost connection, a redirection loop, a timeout). */
const SAYS_NO_NODE = /Connection is closed|Too many Cluster redirections|timed out|\btimeout\b|ETIMEDOUT|ECONNRESET|ECONNREFUSED|EPIPE/;
/**
 * One walk per node (Cluster masters, servers that are not Redis, a sweep with
 * a limit) leaves the server idle for a round trip after every call, so its
 * calls are longer: 2 ms (1 ms for a profile's heavier pages), which on 2M keys
 * counted at ~0.75x a bare client SCAN with no call over 2.5 ms, where 0.5 ms
 * calls ran ~40% slower.
 */
const WALK_BUDGET_US = { count: 2000, profile: 1000 };
/** How long past its own timeout a WAIT's reply may take: the server's tick that ends it (100 ms at hz 10), and the trip. */
const WAIT_REPLY_MARGIN_MS = 400;
/** How long a close waits for a socket that never finished connecting (ioredis: 2 s, on a timer that keeps the process alive). */
const DISCONNECT_TIMEOUT_MS = 50;


/**
 * Elements a profile's MEMORY USAGE of one key samples from the client (the sweep script hands it the
 * aggregates it did not measure whole). Not SAMPLES 0: that walks every element, 130 ms of blocked
 * server for a hash of a million fields; 10,000 took 0.8-2.9 ms there, exact for any key of up to
 * 10,000 elements (the services' entries are strings), an estimate beyond.
 */
const PROFILE_SAMPLES = '10000';

/** Keys per pipelined batch of single-key commands. */
const PIPELINE_BATCH = 1000;
/**
 * Extra time over the connect timeout before the connect deadline fires: enough for the driver's own
 * connectTimeout (same length, armed a moment earlier) to fire first with its cause. It was 250 ms: a
 * server that accepts and never answers (a black hole, a TLS port reached without TLS) passes the TCP
 * connect, so only this deadline ends the PING, and every such command took the timeout + 250 ms.
 */
const DEADLINE_MARGIN_MS = 20;

// The scripts' SHAs, each computed when first needed (a command that runs no script never loads node:crypto).
const scriptShas = new Map<string, string>();
/** Single-key commands perKey runs through EACH_KEY_LUA. */
const EACH_KEY_COMMANDS = new Set(['GET', 'EXISTS', 'UNLINK']);

type SentinelConnectorClass = typeof import('ioredis').SentinelConnector;
/**
 * ioredis's Sentinel connector, whose clients for the Sentinels (made by ioredis itself, to ask for the
 * master) close as quickly as ours: with ioredis's defaults a refused Sentinel's socket waits 2 s on close,
 * on a timer that kept the process alive after close() (the CLI had set ioredis's global defaults instead,
 * which the library must not: its host may use ioredis elsewhere).
 */
function quickCloseSentinels(Base: SentinelConnectorClass): SentinelConnectorClass {
  type Connect = (endpoint: unknown, options?: Record<string, unknown>) => unknown;
  const base = Base.prototype as unknown as { connectToSentinel: Connect };
  const connect = base.connectToSentinel;
  class QuickCloseSentinelConnector extends Base {}
  // A private method in the typings: the one place ioredis builds those clients.
  (QuickCloseSentinelConnector.prototype as unknown as { connectToSentinel: Connect }).connectToSentinel = function (this: unknown, endpoint, options) {
    return connect.call(this, endpoint, { disconnectTimeout: DISCONNECT_TIMEOUT_MS, ...options });
  };
  return QuickCloseSentinelConnector;
}

/** ioredis, loaded once (the Cache loads it before it times a connect: see Cache.openStore). */
type Driver = Awaited<ReturnType<typeof importDriver>>;
const importDriver = () => import('ioredis');
let driver: Promise<Driver> | undefined;
export const loadDriver = (): Promise<Driver> => (driver ??= importDriver());

/**
 * The one ioredis adapter: a connection a short-lived CLI can trust (no
 * offline queue, no reconnect loop, bounded connect and command time, an
 * `error` listener so ioredis never prints "Unhandled error event", a
 * deadline around every operation) for standalone, Cluster and Sentinel.
 */
export async function openIoredisStore(spec: RedisSpec, signal?: AbortSignal): Promise<CacheStore> {
  // Node reads ioredis's CommonJS exports as named exports; a bundle hands over `default` only.
  const mod = await loadDriver();
  const { Redis: IORedis, Cluster: IOCluster, SentinelConnector } = mod.Redis ? mod : (mod as unknown as { default: typeof mod }).default;
  const tls = spec.tls
    ? {
        ca: spec.tls.ca ? readPem(spec.tls.ca, 'CA') : undefined,
        cert: spec.tls.cert ? readPem(spec.tls.cert, 'certificate') : undefined,
        key: spec.tls.key ? readPem(spec.tls.key, 'key') : undefined,
      }
    : undefined;
  const base: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: spec.timeoutMs,
    // No commandTimeout: every command runs under run()'s deadline, and the
    // driver's would be a second timer per command (~6 us of a ~60 us cached
    // read on loopback here).
    // An ACL user without +info would fail the ready check (ioredis#1097).
    enableReadyCheck: false,
    // RESP2 works on every server version and managed service.
    protocol: 2,
    // On close ioredis waits this long for a socket that never finished
    // connecting (refused, black hole) before destroying it, and that timer
    // keeps the process alive: 2 s by default. Nothing is in flight at close.
    disconnectTimeout: DISCONNECT_TIMEOUT_MS,
    username: spec.username,
    password: spec.password,
    // No \`db\`: ioredis SELECTs it in its handshake and, when the server refuses (no such database, an ACL
    // user without +select), only emits 'error' and goes on in database 0. connect() SELECTs it instead.
    ...(tls ? { tls } : {}),
  } as RedisOptions;

  let client: Redis | Cluster;
  if (spec.topology === 'cluster') {
    const { retryStrategy: _r, enableOfflineQueue: _q, ...redisOptions } = base;
    client = new IOCluster(spec.nodes, {
      lazyConnect: true,
      // The cluster's offline queue is needed for its slot refresh (ioredis#581);
      // every operation still runs under a deadline because that queue ignores
      // commandTimeout (ioredis#1604).
      enableOfflineQueue: true,
      // No auto-pipelining: it files a Buffer key under the slot of its UTF-8
      // text (a name that is not UTF-8 goes to the wrong node), and when a slot
      // moves it resends a whole node's batch to the new owner, which refuses it
      // ("All keys in the pipeline should belong to the same slots allocation
      // group"). Commands sent one by one still share each node's socket
      // without waiting on each other, and each follows its own MOVED/ASK.
      enableAutoPipelining: false,
      clusterRetryStrategy: () => null,
      // No CLUSTER INFO to one master picked at random before "ready": a paused one hung the connect without a
      // name; connect() PINGs every master instead, naming any that does not answer.
      enableReadyCheck: false,
      // ioredis asks the seeds for the slot map one after the other, in random order: a silent one (a paused
      // node) asked first took the whole timeout, and the healthy Cluster was "unreachable" in half the runs
      // (a probe). Each seed gets its share, as each Sentinel does.
      // (Half the timeout each let two silent seeds take it all: a review. A slow network with many seeds
      // needs a longer --redis-timeout instead.)
      slotsRefreshTimeout: seedShare(spec),
      maxRedirections: 4,
      redisOptions,
    });
  } else if (spec.topology === 'sentinel') {
    client = new IORedis({
      ...base,
      sentinels: spec.nodes,
      name: spec.sentinelMaster,
      sentinelPassword: spec.sentinelPassword,
      sentinelRetryStrategy: () => null,
      // Each Sentinel gets its share of the timeout: a silent first one took it all, so the healthy third
      // was never asked, and ioredis went on waiting on the second after the command had given up.
      sentinelCommandTimeout: seedShare(spec),
      // ioredis connects to each Sentinel with connectTimeout: a black-holed first one took the whole timeout
      // too. The master's connection then has the share as well (a connect, not the command's deadline).
      connectTimeout: seedShare(spec),
      updateSentinels: false,
      failoverDetector: false,
      Connector: quickCloseSentinels(SentinelConnector) as unknown as RedisOptions['Connector'],
      ...(tls ? { enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
    });
  } else {
    // No driver connect timeout: the connect's deadline (connect()) covers it and gives back time this
    // process's event loop was blocked; the driver's socket timer fired after such a block, before the
    // connection that had landed meanwhile was read.
    client = new IORedis({ ...base, connectTimeout: 0, host: spec.nodes[0].host, port: spec.nodes[0].port });
  }
  const sentinels = spec.topology === 'sentinel' ? new SentinelWatch((o) => new IORedis(o as RedisOptions), spec, base as Record<string, unknown>) : undefined;
  const store = new IoredisStore(client, spec, sentinels);
  // Given up on (the Cache closed while this connect waited on a silent server): closed now, not at its
  // timeout, so a command that is done (a usage error found meanwhile) exits at once.
  const giveUp = () => store.close();
  signal?.addEventListener('abort', giveUp, { once: true });
  try {
    if (signal?.aborted) throw new BackendUnavailableError('redis', 'the connection to Redis was closed before it was made', { reason: 'unreachable' });
    await store.connect();
  } finally {
    signal?.removeEventListener('abort', giveUp);
  }
  return store;
}

/** A TLS file (the CLI checked it before the command: see assertTlsFilesReadable); unreadable here, Redis is unreachable. */
function readPem(file: string, what: string): Buffer {
  // Never from a FIFO or a device: a library's event loop waited on it for ever (a review).
  const why = unreadableTlsFile(file);
  try {
    if (why) throw new Error(why);
    return readFileSync(file);
  } catch (err) {
    throw new BackendUnavailableError('redis', `cannot read the TLS ${what} file ${file}: ${why ?? describeError(err)}`, { reason: 'unreachable', cause: err });
  }
}

/**
 * What a failed connect says, in the operator's words where ioredis's mislead: Sentinels that all answered
 * but know no such master are "All sentinels are unreachable" to ioredis (with no last error).
 */
function connectFailure(cause: unknown, spec: RedisSpec): string {
  let text = describeError(cause);
  // A Cluster whose seeds all failed: ioredis says "Failed to refresh slots cache." and keeps the reason aside.
  const last = (cause as { lastNodeError?: unknown })?.lastNodeError;
  if (last instanceof Error) {
    const why = describeError(last);
    // The cause's own text kept whole (so it is not appended a second time), its reason after it.
    text = `${text} (${why}${/cluster support disabled/i.test(why) ? ': the server is not in Cluster mode' : ''})`;
  }
  if (spec.topology === 'sentinel' && /^All sentinels are unreachable/.test(text) && !/Last error/.test(text)) {
    return `no Sentinel there knows a master named "${spec.sentinelMaster}"`;
  }
  // The driver's connect timeout says only "connect ETIMEDOUT": the timeout set is said, and a TLS
  // handshake a plain server never answers (rediss:// to a redis:// port) is the usual cause.
  // (A Cluster's seeds each timing out within their share: "Failed to refresh slots cache. (timeout)".)
  if (/\bETIMEDOUT\b|timed out|^timeout$|\(timeout\)$/.test(text)) {
    const said = /timeout \d+ ms/.test(text) ? text : `${text} (timeout ${spec.timeoutMs} ms)`;
    if (!spec.tls) return said;
    // A Cluster's or Sentinel's seeds have no scheme: TLS files turned TLS on (it was not said, and the
    // Cluster's own error is a bare "timeout").
    if (spec.topology !== 'standalone') {
      return `${said}; TLS is on (TLS files are given: a ${spec.topology === 'cluster' ? 'Cluster' : 'Sentinel'}'s seeds have no scheme), and a plain, non-TLS port never answers its handshake`;
    }
    return `${said}; if it is a plain, non-TLS port, it never answers the TLS handshake: redis:// for it`;
  }
  // A TLS-only port reached without TLS drops the connection at the first bytes.
  if (!spec.tls && /\b(ECONNRESET|EPIPE)\b/.test(text)) return `${text} (the server dropped the connection: a TLS-only port? rediss:// for TLS)`;
  return text;
}

/** How long a bare connection waits for a server's unasked error line (see probeNode). */
const GREETING_WAIT_MS = 300;

/**
 * A bare TCP connect to a node (nothing written): the socket error it meets (ECONNREFUSED, EHOSTUNREACH), or
 * the error line a server sends unasked before it drops the connection (`-ERR max number of clients
 * reached`); neither within `ms`: connected and silent (a healthy Redis, or a TLS-only port awaiting a handshake).
 */
function probeNode(node: { host: string; port: number }, ms: number): Promise<{ code?: string; greeting?: string }> {
  return new Promise((resolve) => {
    let got = '';
    let code: string | undefined;
    const socket = connectSocket({ host: node.host, port: node.port });
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ code, greeting: /^-([^\r\n]{1,200})\r?\n/.exec(got)?.[1] });
    };
    const timer = setTimeout(done, ms);
    socket.on('data', (chunk: Buffer) => {
      got += chunk.toString('latin1');
      if (got.includes('\n') || got.length > 256) done();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      code = err.code;
      done();
    });
    socket.on('close', done);
  });
}

/**
 * Why a Cluster's seeds or the Sentinels could not be reached, where ioredis says only "Connection is closed."
 * (it keeps each node's ECONNREFUSED to itself: a probe): each node's socket error or refusal line, by a bare
 * connect; empty when every node took the connection.
 */
async function nodesRefusing(nodes: Array<{ host: string; port: number }>, ms: number): Promise<string> {
  const probed = await Promise.all(nodes.slice(0, 10).map(async (n) => ({ n, p: await probeNode(n, ms) })));
  const said = probed.filter(({ p }) => p.code || p.greeting).map(({ n, p }) => `${n.host}:${n.port} ${p.code ?? p.greeting}`);
  return said.join(', ');
}

/** A failure after deletions: with each key's answer (`partial`) and their count (`progress`). */
function withAnswers(err: unknown, answers: number[]): unknown {
  return err instanceof BackendUnavailableError ? err.withProgress({ done: answers.reduce((a, n) => a + (n > 0 ? n : 0), 0) }, answers) : err;
}

/** A batched call as messages name it: `UNLINK (12 keys)`, `GET (1 key)`. */
const batchLabel = (what: string, keys: number) => `${what} (${keys} key${keys === 1 ? '' : 's'})`;

/**
 * A PING the ACL user may not send (the services' user often may not: their client never pings) or that
 * was renamed away still came back from the server: a round trip all the same. Read as a failure, every
 * command called such a server unreachable and ran without the cache.
 */
const pingAnswered = (err: unknown): string => {
  // MISCONF: a failing RDB save stops writes and PINGs (Redis refuses PING with the writes), reads are served.
  if (reasonOf(err) === 'no-permission' || /^(?:ERR unknown command|MISCONF)\b/.test((err as Error)?.message ?? '')) return 'PONG';
  throw err;
};

const isWrongType = (err: unknown) => /^WRONGTYPE/.test((err as Error)?.message ?? '');
/** GET of a key holding another type: answered as a miss (MGET answers nil for it; GET fails). */
const wrongTypeIsNull = (err: unknown) => (isWrongType(err) ? null : Promise.reject(err));

/**
 * A command (or a key) a script used that the ACL user may not: Redis 6-7.0 say it with ERR and "The user
 * executing the script can't run this command" (or "can't access at least one of the keys"), 7.2 and
 * Valkey with "ERR ACL failure in script", not NOPERM (that is for the script command itself), so a
 * refusal read as a failure said "run again to finish" and verify --fix counted the refused deletions "in doubt".
 */
const SCRIPT_COMMAND_REFUSED = /user executing the script can't (?:run this command|access at least one of the keys)|ACL failure in script/i;

/** The reason a Redis failure maps to: the server's error code word, or the socket error's code. */
function reasonOf(err: unknown): BackendReason {
  const text = err instanceof Error ? err.message : String(err);
  // A Redis error reply starts with its code word (RESP); Node socket errors carry `code`.
  const word = /^[A-Z]+/.exec(text)?.[0];
  if (word === 'NOPERM' || (word === 'ERR' && SCRIPT_COMMAND_REFUSED.test(text))) return 'no-permission';
  // A replica given as the server: said with "run again", which could never finish.
  if (word === 'READONLY') return 'read-only';
  if (word === 'NOAUTH' || word === 'WRONGPASS') return 'refused-login';
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code && /^E[A-Z]+$/.test(code)) return 'unreachable';
  // Any other error reply answers this command alone (OOM refused a SET; the UNLINK after it runs): an outage
  // only where the server is not serving for now. It was 'failed', taken as Redis down for the rest of the
  // run: a suspension's invalidation was skipped, its permissions: entry left granting everything (a probe).
  if ((err as Error)?.name === 'ReplyError' && !(word && NOT_SERVING_REPLIES.has(word))) return 'rejected';
  return 'failed';
}

/** A node as messages name it. */
const nodeName = (node: Redis) => `${node.options.host ?? '127.0.0.1'}:${node.options.port ?? 6379}`;

/** "no answer from master A" / "masters A, B", for a timeout where those had not answered. */
const silentMasters = (waiting: Set<Redis>) => `no answer from master${waiting.size === 1 ? '' : 's'} ${[...waiting].map(nodeName).join(', ')}`;

/** A timeout, naming the masters that had not answered (none: as it is). */
function namingSilent(err: unknown, waiting: Set<Redis>): unknown {
  if (!(err instanceof BackendUnavailableError) || err.reason !== 'timeout' || !waiting.size) return err;
  return new BackendUnavailableError('redis', `${err.message} (${silentMasters(waiting)})`, { cause: err, reason: 'timeout' });
}

/** A connect the server answered with an error: no connection to run anything on (Redis down), never 'rejected'. */
const failedConnect = (reason: BackendReason): BackendReason => (reason === 'rejected' ? 'failed' : reason);

/**
 * Error replies of a server that serves nothing for now (loading, a script running, a Cluster or master down),
 * or no write (NOREPLICAS: a master cut off from its replicas, the usual sign before a failover: a review).
 */
const NOT_SERVING_REPLIES: ReadonlySet<string> = new Set(['LOADING', 'BUSY', 'CLUSTERDOWN', 'MASTERDOWN', 'TRYAGAIN', 'NOREPLICAS']);

/**
 * The reason of a failed operation on a store of this topology: reasonOf, but READONLY from a Sentinel's or
 * a Cluster's master is a failover under way (its replica promoted, the writes may come undone: run again),
 * not a replica given as the server (a review: a failover mid-invalidate-all said "a replica takes no
 * writes" and no rerun).
 */
export function failureReason(err: unknown, topology: RedisSpec['topology']): BackendReason {
  const reason = reasonOf(err);
  return reason === 'read-only' && topology !== 'standalone' ? 'failed' : reason;
}

/** The server refused the SELECT of the URL's database: an answer, not an unreachable server. */
class DatabaseRefused extends Error {
  constructor(override readonly cause: unknown) {
    super(describeError(cause));
  }
}

class IoredisStore implements CacheStore {
  readonly target: string;
  readonly mode: CacheStore['mode'];
  private lastError: Error | undefined;
  /** Cluster: the last error of one node, and which (ioredis says only "Connection is closed." where it failed). */
  private lastNodeError: { node: string; err: Error; at: number } | undefined;
  private closed = false;
  /** Nodes where scripting was refused (NOPERM, renamed EVAL): sweeps run client-side there. */
  private readonly noScript = new WeakSet<Redis>();
  /** Nodes where MGET was refused (NOPERM, renamed): reads go per key there. */
  private readonly noMget = new WeakSet<Redis>();
  /** Nodes where EVAL_RO is unknown (before Redis 7) or not allowed: read-only scripts run as EVAL there. */
  private readonly noEvalRo = new WeakSet<Redis>();
  /** Per node: whether its sweeps walk the cursor space in two lanes (asked once). */
  private readonly cursorSplit = new WeakMap<Redis, Promise<boolean>>();

  constructor(
    private readonly client: Redis | Cluster,
    private readonly spec: RedisSpec,
    /** Sentinel: asked after deletions whether the master is still the one this client is on. */
    private readonly sentinels?: SentinelWatch,
  ) {
    this.target = spec.display;
    this.mode = spec.topology;
    client.on('error', (err: Error) => {
      this.lastError = err;
    });
    if (spec.topology === 'cluster') {
      // Each node's own error events, so none is ever unhandled; which node, for the message (see failure).
      (client as Cluster).on('node error', (err: Error, node?: string) => {
        this.lastError = err;
        if (node) this.lastNodeError = { node, err, at: Date.now() };
      });
    }
  }

  private get timeoutMs() {
    return this.spec.timeoutMs;
  }

  /** Connects and PINGs within one deadline, or throws BackendUnavailableError naming the real cause. */
  async connect(): Promise<void> {
    const connectWaiting = new Set<Redis>();
    let pingsSent: number | undefined;
    try {
      // A TCP connect alone proves nothing (a TLS port reached without TLS
      // accepts and then stays silent); on a cluster the PING also waits for
      // the slot map needed for fan-out (ioredis#1884).
      await withDeadline(
        (async () => {
          await this.client.connect();
          // Sent with the PING (no round trip of its own).
          const clusterNode = this.spec.topology === 'standalone' ? this.isClusterNode() : undefined;
          // A Cluster: every master, each watched (a paused one is named when the deadline comes).
          if (this.mode === 'cluster') {
            pingsSent = Date.now();
            await this.pingEachMaster(connectWaiting);
          }
          else await this.client.ping().catch(pingAnswered);
          if (await clusterNode) {
            throw new BackendUnavailableError('redis', `Redis at ${this.target} is a Cluster node: as one server it holds only its own slots' keys (counts would be part of them, and deletions of other slots refused)`, { reason: 'cluster-node' });
          }
          if (this.sentinels) await this.refuseReplica();
          await this.selectDatabase();
        })(),
        this.timeoutMs + DEADLINE_MARGIN_MS,
        // Said after "Redis at <target> is unreachable: ", which names the server already.
        'the connect',
        { shownMs: this.timeoutMs },
      );
    } catch (err) {
      if (err instanceof BackendUnavailableError && err.reason === 'cluster-node') {
        this.close();
        throw err;
      }
      if (err instanceof DatabaseRefused) {
        this.close();
        const said = describeError(err.cause);
        throw new BackendUnavailableError('redis', `Redis at ${this.target} refused database ${this.spec.db}: ${said}`, { cause: err.cause, reason: failedConnect(reasonOf(err.cause)) });
      }
      // ioredis reports "Connection is closed." here; the cause (ECONNREFUSED,
      // a TLS error) came through the error event.
      const cause = this.lastError ?? err;
      // Sentinel: the master they named, when one was reached (a stalled master: the message named only the Sentinels).
      const master = this.sentinels ? (this.client as Redis).stream : undefined;
      const named = master?.remotePort ? ` (the master ${this.spec.sentinelMaster} the Sentinels named: ${plainAddress(master.remoteAddress)}:${master.remotePort})` : '';
      // Closed by its owner (close() during the connect): no server closed it.
      const closedByOwner = this.closed;
      this.close();
      // A Cluster whose seeds failed says "Failed to refresh slots cache." and keeps the node's answer aside.
      const last = (cause as { lastNodeError?: unknown })?.lastNodeError;
      const answer = last instanceof Error ? last : cause;
      const reason = err instanceof BackendUnavailableError ? err.reason : reasonOf(answer);
      // The reply parser's "Unknown RESP type 60 "<". Please report this." means the port speaks something else.
      const foreign = /Unknown RESP type/.test(describeError(cause));
      // A plain server that dropped the connection may have said why first (maxclients: "-ERR max number of clients
      // reached"), which ioredis loses to its first write's EPIPE: said as a TLS-only port (a probe). Asked on a bare socket.
      // (Or closed before the first write, with no socket error: "Connection is closed." alone.)
      const dropped = !foreign && !this.spec.tls && this.spec.topology === 'standalone' && (/\b(ECONNRESET|EPIPE)\b/.test(describeError(cause)) || (!this.lastError && !closedByOwner && /^Connection is closed/.test(describeError(cause))));
      const greeting = dropped ? (await probeNode(this.spec.nodes[0], Math.min(GREETING_WAIT_MS, this.timeoutMs))).greeting : undefined;
      let said = foreign ? 'it does not answer as Redis (an HTTP or a TLS port? rediss:// for TLS)' : greeting ? `it refuses new connections: ${greeting}` : connectFailure(cause, this.spec);
      if (this.spec.topology !== 'standalone' && !closedByOwner && /Connection is closed\.?\)?$/.test(said)) {
        const why = await nodesRefusing(this.spec.nodes, Math.min(GREETING_WAIT_MS, this.timeoutMs));
        if (why) said = `${said}: ${why}`;
      }
      // A server that answered and refused the credentials is no network problem: said as what it is.
      const refused = /^(NOAUTH|WRONGPASS)\b/.test(describeError(answer));
      const notCluster = /cluster support disabled/i.test(said);
      const unknownMaster = /^no Sentinel there knows a master named/.test(said);
      // Named only where their PINGs had half the timeout to answer: the time may have gone to silent seeds,
      // and healthy masters whose PINGs were just sent were blamed (a review).
      const silent = connectWaiting.size && pingsSent !== undefined && Date.now() - pingsSent >= this.timeoutMs / 2 ? ` (${silentMasters(connectWaiting)})` : '';
      throw new BackendUnavailableError('redis', `Redis at ${this.target} ${refused ? 'refused the login' : notCluster ? 'is not a Cluster' : 'is unreachable'}: ${said}${said.includes(`:${master?.remotePort}`) ? '' : named}${silent}`, {
        cause: foreign ? undefined : cause,
        // A server that is not a Cluster answered: no retry makes it one.
        reason: notCluster ? 'failed' : unknownMaster ? 'unknown-master' : reason === 'failed' || reason === 'timeout' || reason === 'rejected' ? 'unreachable' : reason,
      });
    }
  }

  /**
   * Whether the server given as one is a Redis Cluster node (the services' REDIS_URL often names one): walked
   * as one server, its counts were a third of the truth with exit 0, and deletions failed with CROSSSLOT and
   * "run again". Any refusal (no such command, an ACL without it) or a lost connection counts as no.
   */
  private isClusterNode(): Promise<boolean> {
    return (this.client as Redis).call('CLUSTER', 'MYID').then(
      () => true,
      () => false,
    );
  }

  /** The URL's database, SELECTed here so that a refusal fails the connect (see the options). Database 0 needs none. */
  private async selectDatabase(): Promise<void> {
    const db = this.spec.db;
    if (!db || this.spec.topology === 'cluster') return;
    await (this.client as Redis).select(db).catch((err: unknown) => {
      // The server's answer (no such database, NOPERM); a lost connection is said as one, by connect().
      throw (err as Error)?.name === 'ReplyError' ? new DatabaseRefused(err) : err;
    });
  }

  /**
   * Sentinel: a Sentinel with a stale view can name a replica as the master. ioredis's role check runs
   * only in the ready check, which is off (an ACL user without +info fails it): asked here instead, so
   * a write is not refused with READONLY and "run again" when no rerun can finish. A user who may not
   * run ROLE is not checked.
   */
  private async refuseReplica(): Promise<void> {
    const role = (await (this.client as Redis).call('ROLE').catch(() => undefined)) as unknown[] | undefined;
    // A master's ROLE lists its replicas: kept for deletions confirmed while no Sentinel answers (confirmMaster).
    if (Array.isArray(role) && role[0] === 'master' && Array.isArray(role[2])) {
      this.replicasAtConnect = role[2].length;
      // Those past their first sync (an offset acknowledged): ones that could be promoted meanwhile.
      this.replicatingAtConnect = role[2].filter((r) => Array.isArray(r) && Number(r[2]) > 0).map((r) => `${r[0]}:${r[1]}`);
    }
    if (!Array.isArray(role) || role[0] === 'master') return;
    const s = (this.client as Redis).stream;
    throw new BackendUnavailableError('redis', `the Sentinels named ${plainAddress(s?.remoteAddress)}:${s?.remotePort} as master ${this.spec.sentinelMaster}, but it is a replica (a Sentinel with a stale view? check \`SENTINEL get-master-addr-by-name\` on each)`, { reason: 'unreachable' });
  }

  /**
   * A deleting sweep given a replica as the server: refused with what it is. Holding none of the keys (its
   * first sync), it deleted nothing and said "deleted 0", exit 0, the master's keys all there (a probe);
   * holding some, the first UNLINK is refused READONLY. A user who may not run ROLE is not checked.
   */
  private async refuseStandaloneReplica(): Promise<void> {
    // (Asked once per store: invalidate of two tenants is two sweeps, a drain one per owed page.)
    const role = (await this.run('ROLE', () => (this.client as Redis).call('ROLE')).catch(() => undefined)) as unknown[] | undefined;
    if (!Array.isArray(role) || role[0] !== 'slave') return;
    throw new BackendUnavailableError('redis', `Redis at ${this.target} is a replica of ${String(role[1])}:${String(role[2])}, which holds the keys`, { reason: 'read-only' });
  }

  /**
   * Sentinel: after work that deleted keys, checks that the server it was done on is still the master
   * the Sentinels name. A failover midway leaves this client on the old master until Sentinel demotes
   * it, and the demoted master then resyncs from the new one: the deletions come undone (measured: an
   * invalidate-all "complete" with most keys back). No Sentinel answering (a partition between this
   * client and them): the replicas the master had at the connect must acknowledge the deletions (it returned
   * at once, and a failover then left exit 0, "complete", with the keys on the new master: a probe).
   */
  private async confirmMaster(): Promise<void> {
    if (!this.sentinels) return;
    const named = await this.sentinels.master();
    const s = (this.client as Redis).stream;
    if (!named) {
      if (this.replicasAtConnect) await this.confirmReplicas(`${plainAddress(s?.remoteAddress)}:${s?.remotePort}`, this.replicasAtConnect, 'connect');
      return;
    }
    // The run id tells servers apart only where the Sentinels give a hostname (asked once, then).
    const peer = { address: s?.remoteAddress, port: s?.remotePort, runId: isIP(named.host) ? undefined : await this.serverRunId() };
    const at = `${plainAddress(peer.address)}:${peer.port}`;
    if (!isNamedMaster(named, peer)) throw failedOverError(this.spec.sentinelMaster!, at, named);
    // Still named, yet a failover may be under way: the promoted replica stops replicating from this server at
    // once, while the Sentinels name it the master for a while more (a review: invalidate said "deleted 5", the
    // new master still held them). Fewer replicas than the Sentinels saw replicating acknowledged the
    // deletions: they may not last.
    if (named.promoted) throw promotedError(this.spec.sentinelMaster!, at, named.promoted);
    // Also the replicas this master listed replicating at the connect, unless the Sentinels hold them down: for
    // ~20 s after a failover the Sentinels describe a former master, synced since, as no replica, and a second
    // failover to it went unseen (a probe: invalidate-all exit 0, 12-14% of the keys on the new master).
    // Only those the Sentinels list (a replica they do not know, replica-announced no, can never be promoted).
    const listed = (this.replicatingAtConnect ?? []).filter((r) => (named.listed ?? []).includes(r) && !(named.down ?? []).includes(r)).length;
    const expected = Math.max(named.replicas ?? 0, listed);
    if (expected) await this.confirmReplicas(at, expected, listed > (named.replicas ?? 0) ? 'master' : 'sentinels');
  }

  /**
   * WAIT for as many replicas as the Sentinels saw replicating (a former master just attached, still syncing,
   * is not among them): the deletions are on those that acknowledge. Counting the replicas attached (INFO)
   * missed a promotion under way: the replica took REPLICAOF NO ONE before it applied the deletions, while this
   * server still counted its link (a review: invalidate exit 0 after SENTINEL FAILOVER, 3 runs in 9, every key
   * still on the new master). A user who may not WAIT: the attached count, as before; without +info, nothing.
   */
  private async confirmReplicas(at: string, expected: number, seenBy: ReplicasSeenBy = 'sentinels'): Promise<void> {
    // Nearly the whole timeout: a healthy replica a little behind (a fork, an fsync) is waited for, not failed.
    const waitMs = Math.max(50, this.timeoutMs - 100);
    let acked: unknown;
    try {
      // Its own deadline: the server ends a timed-out WAIT on its next tick (100 ms at hz 10), then the reply travels.
      acked = await this.run('WAIT', () => (this.client as Redis).call('WAIT', String(expected), String(waitMs)), waitMs + WAIT_REPLY_MARGIN_MS);
    } catch (err) {
      if (!(err instanceof BackendUnavailableError)) throw err;
      // No answer in time: not acknowledged (said as such, not as a Redis timeout).
      if (err.reason === 'timeout') acked = 0;
      // Only a refusal (an ACL without WAIT) falls back to the count below; a lost connection is no confirmation.
      else if (!commandRefused(err)) throw err;
    }
    if (typeof acked === 'number') {
      if (acked >= expected) return;
      throw unreplicatedError(this.spec.sentinelMaster!, at, expected, acked, { waitMs, seenBy });
    }
    const text = await this.run('INFO replication', () => (this.client as Redis).info('replication')).catch(() => undefined);
    const attached = text === undefined ? undefined : Number(/^connected_slaves:(\d+)/m.exec(text)?.[1] ?? NaN);
    if (attached === undefined || Number.isNaN(attached) || attached >= expected) return;
    throw unreplicatedError(this.spec.sentinelMaster!, at, expected, attached, { seenBy });
  }

  private runId: Promise<string | undefined> | undefined;
  /** Sentinel: how many replicas the master listed at the connect (ROLE), undefined where not asked or refused. */
  private replicasAtConnect: number | undefined;
  /** Sentinel: the replicas (ip:port) the master listed with an acknowledged offset at the connect. */
  private replicatingAtConnect: string[] | undefined;

  /** The run id of the server this client is on (asked once; undefined for a user without +info). */
  private serverRunId(): Promise<string | undefined> {
    this.runId ??= this.run('INFO server', () => (this.client as Redis).info('server'))
      .then((text) => /^run_id:(\S+)/m.exec(text)?.[1])
      .catch(() => undefined);
    return this.runId;
  }

  /** Runs one operation under the deadline, turning any failure into BackendUnavailableError. */
  private run<T>(what: string, op: () => Promise<T>, deadlineMs = this.timeoutMs, node?: Redis): Promise<T> {
    let work: Promise<T>;
    try {
      work = op();
    } catch (err) {
      work = Promise.reject(err);
    }
    // Not an async function: no await between the reply and the caller (the cached-read hot path).
    const done = withDeadline(work, deadlineMs, `Redis ${what}`, { mapError: (err) => this.failure(what, err) });
    // A Cluster's command that timed out on a lost master named no master ("UNLINK (12 keys) timed out" on a
    // loaded machine, where the connection's own error usually comes first): the node's recent error, if any.
    return this.mode === 'cluster' ? done.catch((err: unknown) => Promise.reject(this.timedOutOn(err, node))) : done;
  }

  private timedOutOn(err: unknown, on?: Redis): unknown {
    if (!(err instanceof BackendUnavailableError) || err.reason !== 'timeout') return err;
    // A call to one master that timed out: that master (a paused one sends no error event to name it by).
    if (on) return namingSilent(err, new Set([on]));
    const node = this.failedNode(err.message);
    return node ? new BackendUnavailableError('redis', `${err.message}${node}`, { cause: err, reason: 'timeout' }) : err;
  }

  private failure(what: string, err: unknown): BackendUnavailableError {
    if (err instanceof BackendUnavailableError) return err;
    // After the connection dropped, ioredis only says it is closed; the
    // error event holds the reason.
    const shown = this.client.status !== 'ready' && this.lastError ? this.lastError : err;
    return new BackendUnavailableError('redis', `Redis ${what} failed: ${describeError(shown)}${this.failedNode(describeError(shown))}`, { cause: err, reason: failureReason(err, this.spec.topology) });
  }

  /**
   * A Cluster master lost: the text said "Connection is closed." (or a timeout) without naming the master, and
   * varied from run to run (a review). The node's own last error, when recent, names it and says why.
   */
  private failedNode(text: string): string {
    const last = this.lastNodeError;
    // Only on a lost connection, a redirection loop or a timeout: an answer (a refusal, an error reply) is said
    // as it is, never with another node's error (a long-lived watch would carry one for 30 s).
    if (!last || Date.now() - last.at > NODE_ERROR_RECENT_MS || text.includes(last.node) || !SAYS_NO_NODE.test(text)) return '';
    const why = describeError(last.err);
    return ` (node ${last.node}${why === text ? '' : `: ${why}`})`;
  }

  /** The nodes that hold keys: every master of a cluster, or the one server. */
  private masters(): Redis[] {
    if (this.mode === 'cluster') return (this.client as Cluster).nodes('master');
    return [this.client as Redis];
  }

  /** A key of another type (a hash where a JSON string belongs) is a miss, not a Redis failure. */
  get(key: string): Promise<string | null> {
    return this.run('GET', () => this.client.get(key).catch(wrongTypeIsNull));
  }

  async mget(keys: Array<string | Buffer>): Promise<Array<string | null>> {
    // On a Cluster each GET is its own promise; in a pipeline (no scripting) perKey reads the replies.
    return this.perKey('GET', keys, (p, k) => {
      const r: unknown = p.get(k);
      return r instanceof Promise ? r.catch(wrongTypeIsNull) : r;
    }) as Promise<Array<string | null>>;
  }

  /**
   * UNLINK first, in the same round trip: a key of another type where the JSON string belongs (a hash of a
   * million fields) is then freed in the background; SET over it freed it inside the call, 250 ms of
   * blocked server. An UNLINK the user may not run is no failure: the SET's reply is the answer.
   */
  async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    await this.run('SET', async () => {
      if (!this.unlinkRefused) {
        const replies = await this.client.pipeline().unlink(key).set(key, value, 'EX', ttlSeconds).exec();
        const [unlinkErr] = replies?.[0] ?? [];
        // The command refused (not a key this user may not touch: "NOPERM ... access one of the keys").
        if (unlinkErr && /^NOPERM\b.*'unlink' command/i.test((unlinkErr as Error).message)) this.unlinkRefused = true;
        const [err] = replies?.[1] ?? [new Error('no reply to SET')];
        if (!err) return;
        // A Cluster pipeline whose replies differ (NOPERM for the UNLINK, MOVED or ASK for the SET) is not
        // redirected by ioredis: the SET alone is, below. Any other refusal is the SET's own answer.
        if (!unlinkErr && !/^(MOVED|ASK)\b/.test((err as Error).message)) throw err;
      }
      await this.client.set(key, value, 'EX', ttlSeconds);
    });
  }

  /** This user may not UNLINK (an ACL): writes are a plain SET from then on. */
  private unlinkRefused = false;

  async setUnlessLate(key: string, value: string, ttlSeconds: number): Promise<boolean> {
    const node = this.client as Redis;
    if (!this.noScript.has(node) && !this.plainFills) {
      try {
        // The clock of the node holding the key, now: the deadline is that plus the timeout. The client gives up
        // on the SET at its own timeout from sending it, which is later than this instant: a SET run after the
        // client gave up is past the deadline, by that node's own clock (no offset kept: a review found a slow
        // first TIME, another Cluster master's clock, or a clock stepped back let a late fill land).
        const [seconds, micros] = (await this.run('TIME', () => this.script(node, TIME_AT_KEY_LUA, [key], []))) as [string | number, string | number];
        const deadlineUs = Number(seconds) * 1_000_000 + Number(micros) + this.timeoutMs * 1000;
        // 0: run after the deadline (the server or the path was slow): not written, a miss next time. 2: a key of
        // another type there, left to set (UNLINK then SET, the big value freed in the background).
        const written = await this.run('SET', () => this.script(node, SET_BY_DEADLINE_LUA, [key], [value, ttlSeconds, String(deadlineUs)])).catch((err: unknown) => {
          if (err instanceof BackendUnavailableError && err.reason === 'timeout') this.takeBackLate(node, key, value);
          throw err;
        });
        if (written !== 2) return written === 1;
      } catch (err) {
        if (!(err instanceof BackendUnavailableError) || !commandRefused(err)) throw err;
        // Scripts or TIME refused (an ACL): the plain SET, as before (other scripts are not given up for it).
        this.plainFills = true;
      }
    }
    await this.set(key, value, ttlSeconds).catch((err: unknown) => {
      if (err instanceof BackendUnavailableError && err.reason === 'timeout') this.takeBackLate(node, key, undefined);
      throw err;
    });
    return true;
  }

  /**
   * A fill's SET given up on at the timeout may still have run in time, its answer held up on the way back (a
   * review: a proxy holding answers 4 s), with nothing re-read after it: an entry a write invalidated meanwhile
   * stayed until its TTL. So the entry is taken back, only while it holds what the fill wrote, by one command sent
   * now on the same connection: the server runs it after the SET, whenever that runs (a stalled server on its
   * return; the connection's close, when Redis is marked down, sends what was written first). Costs a timed-out
   * fill its entry (a miss next time). Not awaited: Redis is failing, and the caller has its answer. The plain
   * SET (a user who may not run scripts or TIME, a key of another type there) had no deadline: taken back too.
   */
  private takeBackLate(node: Redis, key: string, value: string | undefined): void {
    // EVAL, not EVALSHA: a NOSCRIPT answer would need a second command, sent only once the first is answered.
    // Where scripts are refused (the plain SET, which has no deadline of its own), whatever the key holds: a
    // value another writer put there meanwhile costs a miss, never a stale answer.
    const sent = value !== undefined && !this.noScript.has(node) && !this.plainFills
      ? node.call('EVAL', UNLINK_IF_LUA, 1, key, ...unlinkIfArgs(value))
      : this.unlinkRefused ? node.del(key) : node.unlink(key);
    (sent as Promise<unknown>).catch(() => undefined);
  }

  /** The ROLE check of deleting sweeps on a standalone server, once (see refuseStandaloneReplica). */
  private replicaChecked: Promise<void> | undefined;

  /** TIME or the fill's script refused (an ACL): fills are plain SETs from then on. */
  private plainFills = false;

  async exists(keys: Array<string | Buffer>): Promise<boolean[]> {
    return (await this.perKey('EXISTS', keys, (p, k) => p.exists(k))).map((n) => n === 1);
  }

  typeOf(key: string): Promise<string> {
    return this.run('TYPE', () => this.client.type(key));
  }

  /** UNLINK, not DEL: deleting a large value with DEL blocks the server (redis/redis#1748). */
  async unlink(keys: Array<string | Buffer>): Promise<number[]> {
    const removed = (await this.perKey('UNLINK', keys, (p, k) => p.unlink(k))) as number[];
    // Nothing deleted, nothing that could come back: no Sentinel round trip. A master found failing over: the
    // error carries what was deleted (it said "0 keys deleted ... may come back" of keys deleted: a review).
    if (removed.some((n) => n > 0)) await this.confirmMaster().catch((err: unknown) => Promise.reject(withAnswers(err, removed)));
    return removed;
  }

  async unlinkIfUnchanged(entries: Array<{ key: string | Buffer; value: string }>): Promise<number[]> {
    const out: number[] = [];
    for (let start = 0; start < entries.length; start += PIPELINE_BATCH) {
      const batch = entries.slice(start, start + PIPELINE_BATCH);
      const label = batchLabel('UNLINK if unchanged', batch.length);
      const node = this.client as Redis;
      // A Cluster's masters that ran the script before one refused it: their answers (null where none).
      let scripted: Array<number | null> = [];
      if (!this.noScript.has(node)) {
        try {
          if (this.mode === 'cluster') {
            // One call per key, each to its slot's master (a refusal of scripting, answers attached, falls back below).
            const one = async (i: number) => ((await this.script(node, UNLINK_IF_LUA, [batch[i].key], unlinkIfArgs(batch[i].value))) as number[])[0];
            out.push(...((await this.settleEach(label, batch.length, one, out)) as number[]));
            continue;
          }
          // One node holds every key: one call for the batch.
          const replies = (await this.run(label, () => this.script(node, UNLINK_IF_LUA, batch.map((e) => e.key), batch.flatMap((e) => unlinkIfArgs(e.value))))) as number[];
          // Nothing deleted, nothing that could come back: no Sentinel round trip (as unlink and the sweep).
          if (replies.some((n) => n > 0)) await this.confirmMaster().catch((err: unknown) => Promise.reject(withAnswers(err, [...out, ...replies])));
          out.push(...replies);
          continue;
        } catch (err) {
          if (!(err instanceof BackendUnavailableError) || !commandRefused(err)) throw err;
          if (this.mode !== 'cluster') this.noScript.add(node);
          // Kept: a key a master's script deleted reads as gone below, and would be reported not deleted.
          if (Array.isArray(err.partial)) scripted = (err.partial as Array<number | null>).slice(out.length);
        }
      }
      // The rest the GET-then-UNLINK way. MGET answers nil for a key of another type, where GET fails (one
      // node holds them all but on a Cluster).
      const rest = batch.flatMap((_, i) => (scripted[i] == null ? [i] : []));
      const entriesLeft = rest.map((i) => batch[i]);
      // Per entry of the batch, after the earlier batches' answers (a failure's too: null where unknown).
      const merged = (answers: ArrayLike<number | null>) => placeAnswers(batch.map((_, i) => scripted[i] ?? null), rest, answers);
      try {
        const now = await this.run(label, () =>
          this.mode === 'cluster' ? Promise.all(entriesLeft.map((e) => node.get(e.key).catch(wrongTypeIsNull))) : node.mget(...entriesLeft.map((e) => e.key)),
        );
        out.push(...(merged(await unlinkStillHolding(entriesLeft, now, (keys) => this.unlink(keys))) as number[]));
      } catch (err) {
        throw err instanceof BackendUnavailableError ? err.withProgress(err.progress, [...out, ...merged(Array.isArray(err.partial) ? err.partial : [])]) : err;
      }
    }
    return out;
  }

  /**
   * `count` calls at once (on a Cluster, each to its key's master), their answers in order. One master
   * failing fails them all, with what the others answered in the error's `partial` (after `before`, the
   * answers of the caller's earlier batches; null where unknown): a deletion on a live master is counted,
   * not reported as "at least 0" (invalidate), nor as "before any deletion" (verify --fix).
   */
  private async settleEach(label: string, count: number, call: (i: number) => Promise<unknown> | unknown, before: unknown[]): Promise<unknown[]> {
    const answers: unknown[] = new Array(count).fill(null);
    const withAnswers = (err: unknown) => (err instanceof BackendUnavailableError ? err.withProgress(err.progress, [...before, ...answers]) : err);
    let settled: Array<PromiseSettledResult<unknown>>;
    try {
      settled = await this.run(label, () => Promise.allSettled(answers.map(async (_, i) => (answers[i] = await call(i)))));
    } catch (err) {
      throw withAnswers(err);
    }
    const failed = settled.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed) throw withAnswers(this.failure(label, failed.reason));
    return answers;
  }

  /**
   * A script by its SHA, sent whole when the server does not have it yet (NOSCRIPT). `binary`:
   * replies as Buffers (callBuffer), for scripts that hand back key names that may not be UTF-8.
   */
  private async script(node: Redis, lua: string, keys: Array<string | Buffer>, args: Array<string | number | Buffer>, binary = false, readOnly = false): Promise<unknown> {
    let sha = scriptShas.get(lua);
    if (!sha) scriptShas.set(lua, (sha = sha1Hex(lua)));
    const call = (command: string, first: string) => (binary ? node.callBuffer(command, first, keys.length, ...keys, ...args) : node.call(command, first, keys.length, ...keys, ...args));
    const { bySha, whole } = readOnly && !this.noEvalRo.has(node) ? READ_ONLY_SCRIPT_COMMANDS : { bySha: 'EVALSHA', whole: 'EVAL' };
    try {
      try {
        return await call(bySha, sha);
      } catch (err) {
        if (!/^NOSCRIPT/.test((err as Error).message)) throw err;
        return await call(whole, lua);
      }
    } catch (err) {
      if (bySha === 'EVALSHA' || !readOnlyScriptRefused(describeError(err))) throw err;
      this.noEvalRo.add(node);
      return this.script(node, lua, keys, args, binary);
    }
  }

  /**
   * One single-key command per key, in batches: one script call per batch on a
   * single node (a pipeline where scripting is refused); on a cluster, each
   * command to its slot's master (never CROSSSLOT). Results come back in the keys' order.
   */
  private async perKey<K extends string | Buffer>(
    what: string,
    keys: K[],
    add: (p: Pick<Redis, 'get' | 'exists' | 'unlink' | 'pttl' | 'call'>, key: K) => Promise<unknown> | unknown,
  ): Promise<unknown[]> {
    const out: unknown[] = [];
    for (let start = 0; start < keys.length; start += PIPELINE_BATCH) {
      const batch = keys.slice(start, start + PIPELINE_BATCH);
      const label = batchLabel(what, batch.length);
      // One node holds every key: one script call per batch (see EACH_KEY_LUA), unless scripting is refused.
      const node = this.client as Redis;
      // Reads are one MGET (nil for a key of another type, as the script answers): a script is a write to
      // the server, which holds it during CLIENT PAUSE WRITE (a failover under way), so verify's reads
      // stalled past the deadline where plain reads go on.
      // A user refused MGET (an ACL with +get only, a renamed command) reads as before: a script, or GETs.
      if (this.mode !== 'cluster' && what === 'GET' && !this.noMget.has(node)) {
        try {
          out.push(...(await this.run(batchLabel('MGET', batch.length), () => node.mget(...(batch as string[])))));
          continue;
        } catch (err) {
          if (!(err instanceof BackendUnavailableError) || !commandRefused(err)) throw err;
          this.noMget.add(node);
        }
      }
      if (this.mode !== 'cluster' && EACH_KEY_COMMANDS.has(what) && !this.noScript.has(node)) {
        let answers: unknown[] | undefined;
        try {
          answers = await this.run(label, () => this.eachKey(node, what, batch));
        } catch (err) {
          if (!(err instanceof BackendUnavailableError) || !commandRefused(err)) throw err;
          this.noScript.add(node);
        }
        if (answers) {
          // Keys the server refused inside the script (-1): asked again one by one, for the server's own words.
          const refused = answers.flatMap((a, i) => (a === -1 ? [i] : []));
          if (refused.length) await this.pipelined(what, refused.map((i) => batch[i]), add, (j, value) => (answers[refused[j]] = value), out, answers);
          out.push(...answers);
          continue;
        }
      }
      if (this.mode === 'cluster') {
        // Each command to its key's slot, redirected on MOVED/ASK while slots move (see openIoredisStore).
        out.push(...(await this.settleEach(label, batch.length, (i) => add(this.client as Redis, batch[i]), out)));
        continue;
      }
      const answers: unknown[] = new Array(batch.length).fill(null);
      await this.pipelined(what, batch, add, (i, value) => (answers[i] = value), out, answers);
      out.push(...answers);
    }
    return out;
  }

  /**
   * `what` on each key in one pipeline, each reply handed to `put`. A key that failed (a refusal) does not
   * stop the others: the first failure is thrown after the batch, with every answer so far (`before`, then
   * `answers` as put, null where unknown) in its `partial` (it was thrown at the first error: keys deleted
   * after it, and before it, went uncounted).
   */
  private async pipelined<K extends string | Buffer>(
    what: string,
    keys: K[],
    add: (p: Pick<Redis, 'get' | 'exists' | 'unlink' | 'pttl' | 'call'>, key: K) => Promise<unknown> | unknown,
    put: (i: number, value: unknown) => void,
    before: unknown[],
    answers: unknown[],
  ): Promise<void> {
    const p = (this.client as Redis).pipeline();
    for (const k of keys) add(p as unknown as Redis, k);
    const replies = await this.run(batchLabel(what, keys.length), () => p.exec());
    let first: Error | undefined;
    replies!.forEach(([err, value], i) => {
      if (err && what === 'GET' && isWrongType(err)) put(i, null);
      else if (err) {
        first ??= err;
        put(i, null);
      } else put(i, value);
    });
    if (first) {
      const failure = new BackendUnavailableError('redis', `Redis ${what} failed: ${describeError(first)}`, { cause: first, reason: failureReason(first, this.spec.topology) });
      throw failure.withProgress(undefined, [...before, ...answers]);
    }
  }

  async info(): Promise<Array<Record<string, string>>> {
    return Promise.all(this.masters().map(async (node) => parseInfo(await this.run('INFO', () => node.info(), undefined, node))));
  }

  async ping(): Promise<number> {
    const start = process.hrtime.bigint();
    // A Cluster answers for all its slots only when every master does: each is asked. One node, picked at
    // random, answered for all, so test-redis passed or failed with a master down depending on where its one
    // key fell (a flaky test found it).
    if (this.mode === 'cluster') {
      const waiting = new Set<Redis>();
      await this.run('PING', () => this.pingEachMaster(waiting)).catch((err: unknown) => Promise.reject(namingSilent(err, waiting)));
    } else await this.run('PING', () => this.client.ping().catch(pingAnswered));
    return Number(process.hrtime.bigint() - start) / 1e6;
  }

  /** Cluster: PINGs every master; `waiting` holds those that have not answered yet (named by a timeout). */
  private async pingEachMaster(waiting: Set<Redis>): Promise<void> {
    const masters = this.masters();
    // No master serves a slot (a node never joined into a Cluster, every master lost): no Cluster to use. With
    // no ready check, this connect "succeeded" and cache-info said available with 0 keys (a review).
    if (!masters.length) throw new BackendUnavailableError('redis', 'it serves no slot: no Cluster master holds any (a node never joined into a Cluster? redis-cli --cluster create)', { reason: 'unreachable' });
    for (const m of masters) waiting.add(m);
    await Promise.all(masters.map((m) => m.ping().catch(pingAnswered).then(() => void waiting.delete(m))));
  }

  /**
   * Walks every master (in parallel) until each cursor is back at "0", even
   * through empty pages. Server-side by default; client-side on a node that
   * refuses scripting. On a failure midway the error carries what was done.
   */
  async sweep(request: SweepRequest): Promise<SweepResult> {
    const groups = request.rules.groups.map(() => 0);
    const state: SweepState = { scanned: 0, limitLeft: request.limit ?? -1, via: 'script', stop: false };
    const progress = () => ({ done: groups.reduce((a, b) => a + b, 0), groups: Object.fromEntries(request.rules.groups.map((g, i) => [g, groups[i]])) });
    const nodes = this.masters();
    if (request.action === 'unlink' && this.mode === 'standalone' && !this.sentinels) await (this.replicaChecked ??= this.refuseStandaloneReplica());
    // A Cluster being resharded moves keys between masters while they are walked (a review: invalidate-all
    // said complete with keys of the moving slot left): the slots' state before and after is compared.
    const slotsBefore = this.mode === 'cluster' ? await this.slotState(nodes) : undefined;
    const plainCursors = await Promise.all(nodes.map((node) => this.splitsCursor(node)));
    // A plain dict cursor is a position (see Lane): where every node's is one, the batches say how far the sweep has got.
    const positioned = plainCursors.every(Boolean);
    const lanes: Lane[] = [];
    const onBatch = (lane: Lane) => (batch: SweepBatch, cursor: string) => {
      state.scanned += batch.scanned;
      batch.groups.forEach((n, i) => (groups[i] += n));
      if (positioned) {
        lane.walked = walkedShare(lane, cursor);
        batch.walked = lanes.reduce((a, l) => a + l.walked, 0) / nodes.length;
      }
      return request.onBatch?.(batch);
    };
    const walk = (node: Redis, lane: Lane) => {
      lanes.push(lane);
      return this.sweepNode(node, lane, request, state, onBatch(lane));
    };
    // With a limit the masters go one after the other, so the limit is exact.
    const outcomes: Array<PromiseSettledResult<void>> = [];
    if (request.limit !== undefined) {
      for (const node of nodes) outcomes.push(...(await Promise.allSettled([walk(node, whole())])));
    } else {
      const walks = nodes.flatMap((node, i) => (plainCursors[i] ? halves() : [whole()]).map((lane) => walk(node, lane)));
      outcomes.push(...(await Promise.allSettled(walks)));
    }
    // Every node has stopped by now, so the progress is what was really done.
    // A failure that leaves a call in doubt (a stall, a lost connection) is the one said, before one the server
    // answered: "at least N deleted" must stay true when both happen.
    const failures = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    const failed = failures.find((o) => !(o.reason instanceof BackendUnavailableError && o.reason.answered)) ?? failures[0];
    if (failed) {
      const err = failed.reason;
      // What a deleting sweep did before the failure is part of the error (a rerun finishes the job).
      throw err instanceof BackendUnavailableError && request.action === 'unlink' ? err.withProgress(progress()) : err;
    }
    throwIfAborted(request.signal, progress, 'the sweep');
    // Nothing deleted, nothing that could come back: no Sentinel round trip (nor a "0 keys deleted ... may come back").
    if (request.action === 'unlink' && progress().done > 0) await this.confirmMaster().catch((err: BackendUnavailableError) => Promise.reject(err.withProgress(progress())));
    const slotsAfter = slotsBefore && (await this.slotState(nodes));
    let moving = slotsBefore && movedSlots(slotsBefore, slotsAfter);
    // A slot moving to a master this client has no connection to (one just added, with no slot yet when the
    // client learnt the map): its keys there can be neither listed nor counted from here.
    const unknownTarget = [slotsBefore, slotsAfter].some((st) => st && [...st.peers].some((id) => !st.ids.has(id)));
    if (unknownTarget && request.action === 'unlink') {
      throw new PartialFailureError(
        `slots ${describeSlots(moving ?? [])} are moving to a Cluster master this run does not reach (one just added?): keys moved there were not deleted (${progress().done} deleted); run again once the resharding is done`,
        { progress: progress() },
      );
    }
    // A collecting walk: the keys the rules claim in the moving slots, on every master, as a last batch (a key
    // that moved from a master not yet walked to one already walked was missed, and the caller's repeat
    // ended on a pass that found nothing: a review).
    if (moving?.length && request.action === 'collect') await this.collectInSlots(nodes, moving, request);
    // With the limit reached, the cleanup would delete nothing: the run is incomplete anyway (complete: false).
    if (moving?.length && request.action === 'unlink' && state.limitLeft !== 0) {
      moving = await this.unlinkInMovingSlots(nodes, moving, slotsAfter, request, state, groups, progress).catch((err: unknown) =>
        Promise.reject(err instanceof BackendUnavailableError ? err.withProgress(progress()) : err),
      );
    }
    const handed = slotsBefore && slotsAfter ? (moving ?? []).filter((slot) => slotsBefore.owners[slot] !== slotsAfter.owners[slot]) : [];
    return { scanned: state.scanned, groups, complete: state.limitLeft !== 0, via: state.via, nodes: nodes.length, ...(moving?.length && { moving }), ...(handed.length && { handed }) };
  }

  /** The keys of one slot on one master (CLUSTER COUNTKEYSINSLOT, GETKEYSINSLOT), and those the rules claim. */
  private async claimedInSlot(node: Redis, slot: number, rules: SweepRequest['rules']): Promise<{ keys: Buffer[]; claimed: ClaimedKey[] }> {
    const n = Number(await this.run('CLUSTER COUNTKEYSINSLOT', () => node.call('CLUSTER', 'COUNTKEYSINSLOT', String(slot)), undefined, node));
    if (!n) return { keys: [], claimed: [] };
    const keys = (await this.run('CLUSTER GETKEYSINSLOT', () => node.callBuffer('CLUSTER', 'GETKEYSINSLOT', String(slot), String(n)), undefined, node)) as Buffer[];
    return { keys, claimed: claimKeys(keys, rules) };
  }

  /** The keys the rules claim in these slots, on every master, handed to onBatch. */
  private async collectInSlots(nodes: Redis[], slots: number[], request: SweepRequest): Promise<void> {
    for (const slot of slots) {
      for (const node of nodes) {
        const { keys, claimed } = await this.claimedInSlot(node, slot, request.rules);
        if (!claimed.length) continue;
        const groups = request.rules.groups.map(() => 0);
        for (const k of claimed) groups[k.group]++;
        await request.onBatch?.({ scanned: keys.length, groups, keys: claimed });
      }
    }
  }

  /**
   * After a deleting walk of a Cluster whose slots moved meanwhile: the moving slots' keys, listed on every
   * master (CLUSTER GETKEYSINSLOT), claimed by the rules and deleted by key (redirected to where each is
   * now), pass after pass until one finds none of the families' keys left with no slot changing hands.
   * Still moving after three: PartialFailureError, run again once the resharding is done.
   */
  private async unlinkInMovingSlots(
    nodes: Redis[], slots: number[], walked: SlotState | undefined, request: SweepRequest, state: SweepState, groups: number[], progress: () => BatchProgress,
  ): Promise<number[] | undefined> {
    let current = slots;
    // Each pass starts from the state the one before it (or the walk) ended with: asked once.
    let start = walked;
    for (let pass = 0; pass < 3; pass++) {
      let found = 0;
      for (const slot of current) {
        for (const node of nodes) {
          // The limit reached here: what is left is for a rerun (the result says incomplete).
          if (state.limitLeft === 0) return current;
          const { claimed } = await this.claimedInSlot(node, slot, request.rules);
          found += claimed.length;
          if (claimed.length) await this.actOnClaimed(claimed, 'unlink', state, groups);
        }
      }
      const end = await this.slotState(nodes);
      // A slot of the pass that changed hands during it, or one that began to move: another pass.
      const from = start;
      const handed = from && end ? current.filter((slot) => from.owners[slot] !== end.owners[slot]) : [];
      const fresh = movedSlots(start, end).filter((slot) => !current.includes(slot));
      if (!found && !handed.length && !fresh.length) return undefined;
      current = [...new Set([...current, ...fresh])].sort((a, b) => a - b);
      start = end;
    }
    throw new PartialFailureError(
      `slot${current.length === 1 ? '' : 's'} ${describeSlots(current)} kept moving between Cluster masters during the run: keys moving with them may have been missed (${progress().done} deleted); run again once the resharding is done`,
      { progress: progress() },
    );
  }

  /**
   * Each master's view of the slots: who owns each (from the first master's CLUSTER NODES) and which it is
   * migrating or importing (each master's own line). Undefined where it cannot be asked (no right).
   */
  private async slotState(nodes: Redis[]): Promise<SlotState | undefined> {
    try {
      const texts = await Promise.all(nodes.map((node) => this.run('CLUSTER NODES', () => node.call('CLUSTER', 'NODES') as Promise<string>, undefined, node)));
      return parseSlotState(texts);
    } catch {
      return undefined;
    }
  }

  /**
   * Whether sweeps of this node walk its cursor space in two lanes (see Lane):
   * Redis itself outside Cluster mode, where a cursor is a plain dict cursor.
   * An allowlist: a server that names itself or reports any other `*_version`
   * (Valkey, Dragonfly, Garnet, KeyDB's storage providers) gets one walk, as do
   * Cluster nodes (7.4+ put the slot in a cursor's low bits) and a node whose
   * INFO fails (asked again on the next sweep).
   */
  private splitsCursor(node: Redis): Promise<boolean> {
    if (this.mode === 'cluster') return Promise.resolve(false);
    let known = this.cursorSplit.get(node);
    if (!known) {
      known = this.run('INFO server', () => node.info('server')).then(
        (text) => scansInHalves(parseInfo(text)),
        () => {
          this.cursorSplit.delete(node);
          return false;
        },
      );
      this.cursorSplit.set(node, known);
    }
    return known;
  }

  /**
   * One walk of a master (or of one lane of it), batch by batch, until the
   * lane's end, a signal, the limit, or another walk's failure. A sweep that
   * only reads (count, collect, profile) asks for the next batch before
   * handing this one on, so the server works while the client tallies; never
   * more than one ahead.
   */
  private async sweepNode(node: Redis, lane: Lane, request: SweepRequest, state: SweepState, onBatch: (b: SweepBatch, cursor: string) => void | Promise<void>): Promise<void> {
    const readAhead = request.action !== 'unlink';
    const stopped = () => request.signal?.aborted || state.stop || state.limitLeft === 0;
    const next = (cursor: string) => {
      const p = this.nodeBatch(node, cursor, lane, request, state);
      p.catch(() => undefined); // awaited below; this only keeps a failure during onBatch from going unhandled
      return p;
    };
    try {
      if (stopped()) return;
      let pending = next(lane.from);
      for (;;) {
        const step = await pending;
        const more = step.cursor !== '0' && !(lane.low && isOddCursor(step.cursor));
        if (step.failure) {
          // What the batch did before the server refused the rest is counted first.
          await onBatch(step.batch, step.cursor);
          throw step.failure;
        }
        if (more && readAhead && !stopped()) pending = next(step.cursor);
        await onBatch(step.batch, step.cursor);
        if (!more || stopped()) return;
        if (!readAhead) pending = next(step.cursor);
      }
    } catch (err) {
      // The other masters stop at their next batch.
      state.stop = true;
      throw err;
    }
  }

  /** `command` on each key in one script call: the replies in the keys' order. */
  private async eachKey(node: Redis, command: string, keys: Array<string | Buffer>): Promise<unknown[]> {
    return (await this.script(node, EACH_KEY_LUA, keys, [command], false, command !== 'UNLINK')) as unknown[];
  }

  /** One batch on one node: server-side, or client-side once the node has refused scripting. */
  private async nodeBatch(node: Redis, cursor: string, lane: Lane, request: SweepRequest, state: SweepState): Promise<NodeBatch> {
    if (!this.noScript.has(node)) {
      try {
        return await this.scriptBatch(node, cursor, lane, request, state);
      } catch (err) {
        if (!(err instanceof BackendUnavailableError) || !commandRefused(err)) throw err;
        // Refused: this node is swept client-side from here on (the same batch again).
        this.noScript.add(node);
      }
    }
    state.via = 'client';
    return this.clientBatch(node, cursor, lane, request, state);
  }

  private async scriptBatch(node: Redis, cursor: string, lane: Lane, request: SweepRequest, state: { limitLeft: number }) {
    const { rules } = request.rules;
    // One UNLINK per page where a node holds every slot and no limit must be exact.
    const action = request.action === 'unlink' && this.mode !== 'cluster' && request.limit === undefined ? 'unlink-batched' : request.action;
    const args: Array<string | number | Buffer> = [
      // With a narrow MATCH glob (one tenant's) the script sees few keys: bigger pages, fewer round trips.
      // The rules' own prefilter only drops other applications' keys: pages of the usual size.
      action, cursor, request.match ? SCRIPT_MATCH_SCAN_COUNT : SCRIPT_SCAN_COUNT, Buffer.from(request.match ?? request.rules.prefilter ?? '', 'latin1'),
      isHalf(lane) ? LANE_BUDGET_US : request.action === 'profile' ? WALK_BUDGET_US.profile : WALK_BUDGET_US.count,
      request.action === 'unlink' ? state.limitLeft : -1, lane.low ? 'low' : '', rules.length,
    ];
    // Patterns and prefixes are binary strings: sent byte for byte, never re-encoded as UTF-8.
    // Counting and deleting need the family only: patterns without a capture are cheaper per key.
    const needsTenant = request.action === 'collect' || request.action === 'profile';
    for (const r of rules) args.push(Buffer.from(r.dispatch, 'latin1'), Buffer.from(needsTenant ? r.lua : r.luaPlain, 'latin1'), r.group + 1);
    const reply = (await this.run('sweep script', () => this.script(node, SWEEP_LUA, [], args, true, !action.startsWith('unlink')), undefined, node)) as unknown as [Buffer, number, number, number[], Array<Buffer | number>, Array<Buffer | number>];
    const [next, scanned, limitLeft, counts, entries, handed] = reply;
    if (request.action === 'unlink') state.limitLeft = limitLeft;
    const batch: SweepBatch = { scanned, groups: request.rules.groups.map((_, i) => Number(counts[i] ?? 0)) };
    const triples = (list: Array<Buffer | number>): ClaimedKey[] => {
      const out: ClaimedKey[] = [];
      for (let i = 0; i < list.length; i += 3) out.push({ key: list[i] as Buffer, group: Number(list[i + 1]) - 1, tenant: list[i + 2] as Buffer });
      return out;
    };
    if (request.action === 'collect') batch.keys = triples(entries);
    else if (request.action === 'profile') batch.profile = profileLines(entries as unknown as Buffer);
    // Keys the script could not touch on this node (a Cluster slot being imported, keys an ACL refuses): done
    // from here, redirected, or refused in the server's own words after the page's counts.
    if (handed?.length && (request.action === 'unlink' || request.action === 'profile')) {
      try {
        const more = await this.actOnClaimed(triples(handed), request.action, state, batch.groups);
        if (more && batch.profile) batch.profile = joinProfiles(batch.profile, more);
      } catch (failure) {
        return { cursor: next.toString(), batch, failure };
      }
    }
    return { cursor: next.toString(), batch };
  }

  /** The same batch computed by the client: SCAN, classify with the rules' RegExps over binary strings, act per key. */
  private async clientBatch(node: Redis, cursor: string, lane: Lane, request: SweepRequest, state: { limitLeft: number }) {
    const match = request.match ?? request.rules.prefilter;
    const scan = (from: string, count: number) =>
      this.run('SCAN', () =>
        match ? node.scanBuffer(from, 'MATCH', Buffer.from(match, 'latin1') as unknown as string, 'COUNT', count) : node.scanBuffer(from, 'COUNT', count),
      );
    let [next, page] = await scan(cursor, lane.count);
    // A page that ran into the other lane's half is not taken: smaller pages from the same
    // cursor until one stops short of it (the lane keeps the smaller size); a single bucket
    // past it is this lane's end (as the script does).
    while (lane.low && pastHalf(next.toString())) {
      if (lane.count === 1) {
        page = [];
        break;
      }
      lane.count = Math.max(1, lane.count >> 1);
      [next, page] = await scan(cursor, lane.count);
    }
    const groups = request.rules.groups.map(() => 0);
    const claimed = claimKeys(page, request.rules);
    const batch: SweepBatch = { scanned: page.length, groups };
    if (request.action === 'collect') {
      for (const c of claimed) groups[c.group]++;
      batch.keys = claimed;
    } else if (request.action === 'count') {
      for (const c of claimed) groups[c.group]++;
    } else {
      try {
        batch.profile = await this.actOnClaimed(claimed, request.action, state, groups);
      } catch (failure) {
        return { cursor: next.toString(), batch, failure };
      }
    }
    return { cursor: next.toString(), batch };
  }

  /**
   * Unlinks (within the limit, counting what was really deleted) or profiles
   * claimed keys from the client: each command to its key's node, so on a
   * Cluster it follows MOVED and ASK (a slot being moved). Adds to `groups`.
   */
  private async actOnClaimed(claimed: ClaimedKey[], action: 'unlink' | 'profile', state: { limitLeft: number }, groups: number[]): Promise<ProfileBatch | undefined> {
    if (action === 'unlink') {
      const chosen = state.limitLeft < 0 ? claimed : claimed.slice(0, state.limitLeft);
      let removed: Array<number | null>;
      try {
        removed = await this.unlink(chosen.map((c) => c.key));
      } catch (err) {
        // What was deleted before the failure (its per-key answers) is counted.
        const partial = (err as { partial?: unknown }).partial;
        if (Array.isArray(partial)) partial.forEach((n, i) => (groups[chosen[i].group] += Number(n ?? 0)));
        throw err;
      }
      removed.forEach((n, i) => (groups[chosen[i].group] += n ?? 0));
      if (state.limitLeft > 0) state.limitLeft -= removed.reduce<number>((a, b) => a + (b ?? 0), 0);
      return undefined;
    }
    for (const c of claimed) groups[c.group]++;
    const sizes = await this.perKey('MEMORY USAGE', claimed.map((c) => c.key), (p, k) => p.call('MEMORY', 'USAGE', k, 'SAMPLES', PROFILE_SAMPLES));
    const ttls = await this.perKey('PTTL', claimed.map((c) => c.key), (p, k) => p.pttl(k));
    return {
      forEach: (visit) => claimed.forEach((c, i) => visit(c.group, c.tenant, 0, c.tenant.length, Number(sizes[i] ?? 0), ttlClass(Number(ttls[i])))),
    };
  }

  /** Disconnects at once; the process must never stay alive because of Redis (ioredis#335). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.disconnect();
    this.sentinels?.close();
  }
}

/** One sweep batch of one node; `failure`: the server refused the rest after this batch's work (counted first). */
interface NodeBatch {
  cursor: string;
  batch: SweepBatch;
  failure?: unknown;
}

/**
 * A stretch of one node's SCAN cursor space, walked by one chain of calls.
 * SCAN visits a table's buckets in reverse-binary order (dictScan in Redis's
 * dict.c): a cursor's lowest bit is the top bit of how far the walk has got,
 * so the even cursors are the first half of the walk and the odd ones the
 * second, at any table size and through a rehash (a bucket and the buckets it
 * splits into share their low bits). Two lanes, one from "0" that stops where
 * the cursor turns odd and one from "1" (the second half's first bucket) to
 * "0", visit each bucket once between them. One chain leaves the server idle
 * for a round trip after every call; two keep it busy while the client reads
 * the other lane's reply. A low-lane page that runs past the half is not
 * taken: smaller pages from the same cursor until one stops short of it (a
 * COUNT 1 page holds one bucket's keys), so no key is taken twice. Checked
 * against dictScan and SCAN's page loop in Redis 6.0-8.0 (the minimum table
 * of 4 buckets; 7.4+ standalone has one dict and plain cursors).
 */
interface Lane {
  from: string;
  /** Stop where the cursor turns odd: the other lane's half begins there. */
  low: boolean;
  /** SCAN COUNT of a client-side page: halved each time a low-lane page runs past the half. */
  count: number;
  /** The share of its node's walk this lane has done (0-0.5 for a half, 0-1 for a whole walk). */
  walked: number;
}
const whole = (): Lane => ({ from: '0', low: false, count: SCAN_COUNT, walked: 0 });
const halves = (): Lane[] => [
  { from: '0', low: true, count: SCAN_COUNT, walked: 0 },
  { from: '1', low: false, count: SCAN_COUNT, walked: 0 },
];

/** The keys the rules claim (the first declared rule that matches), with their group and tenant. */
function claimKeys(keys: Buffer[], rules: SweepRequest['rules']): ClaimedKey[] {
  const claimed: ClaimedKey[] = [];
  for (const key of keys) {
    const bin = key.toString('latin1');
    const prefix = keyDispatchPrefix(bin);
    for (const rule of rules.rules) {
      if (rule.dispatch && rule.dispatch !== prefix) continue;
      const m = rule.regex.exec(bin);
      if (!m) continue;
      const tenant = Buffer.from(m.slice(1).find((x) => x !== undefined) ?? '', 'latin1');
      claimed.push({ key, group: rule.group, tenant });
      break;
    }
  }
  return claimed;
}

/** Slot owners (node id per slot, '' where none) and the slots some master is migrating or importing. */
export interface SlotState {
  owners: string[];
  moving: Set<number>;
  /** The ids of the masters asked (each one's `myself` line). */
  ids: Set<string>;
  /** The ids the migrating and importing markers name (where the keys go, or come from). */
  peers: Set<string>;
}

/** CLUSTER NODES of every master: the owners as the first one sees them, the moving slots as each sees its own. */
export function parseSlotState(texts: string[]): SlotState {
  const owners: string[] = new Array(16384).fill('');
  const moving = new Set<number>();
  const ids = new Set<string>();
  const peers = new Set<string>();
  texts.forEach((text, i) => {
    for (const line of text.split('\n')) {
      const f = line.trim().split(' ');
      if (f.length < 8) continue;
      const mine = f[2].split(',').includes('myself');
      if (mine) ids.add(f[0]);
      for (const part of f.slice(8)) {
        // `[5461->-<id>]` migrating, `[5461-<-<id>]` importing: the node's own line only.
        const m = /^\[(\d+)-[<>]-([0-9a-f]+)\]$/.exec(part);
        if (m) {
          if (mine) {
            moving.add(Number(m[1]));
            peers.add(m[2]);
          }
          continue;
        }
        if (i !== 0) continue;
        const [from, to = from] = part.split('-').map(Number);
        if (Number.isInteger(from) && Number.isInteger(to)) for (let slot = from; slot <= to && slot < 16384; slot++) owners[slot] = f[0];
      }
    }
  });
  return { owners, moving, ids, peers };
}

/** Slots moving during a walk: migrating at its start or end, or owned by another node at the end. */
export function movedSlots(before: SlotState | undefined, after: SlotState | undefined): number[] {
  if (!before || !after) return [];
  const out = new Set([...before.moving, ...after.moving]);
  for (let slot = 0; slot < 16384; slot++) if (before.owners[slot] !== after.owners[slot]) out.add(slot);
  return [...out].sort((a, b) => a - b);
}

/** One of two lanes on its node (the server is never idle between calls: short calls, see LANE_BUDGET_US). */
const isHalf = (lane: Lane) => lane.low || lane.from !== '0';

/**
 * Where a plain dict cursor is in its walk, 0-1: its 64 bits reversed, over
 * 2^64 (buckets are visited in reverse-binary order, and the bits above the
 * table's mask are 0 in a cursor SCAN returns, so this holds at any table size).
 */
export function cursorPosition(cursor: string): number {
  let v = BigInt(cursor);
  let reversed = 0n;
  for (let i = 0; i < 64; i++) {
    reversed = (reversed << 1n) | (v & 1n);
    v >>= 1n;
  }
  return Number(reversed) / 2 ** 64;
}

/** The share of its node's walk a lane has done once SCAN returned `cursor` (never less than before). */
function walkedShare(lane: Lane, cursor: string): number {
  const start = lane.from === '1' ? 0.5 : 0;
  const end = lane.low ? 0.5 : 1;
  if (cursor === '0' || (lane.low && isOddCursor(cursor))) return end - start;
  return Math.max(lane.walked, Math.min(end, Math.max(start, cursorPosition(cursor))) - start);
}

/** The parity of a SCAN cursor (a decimal string of up to 64 bits): its last digit's. */
function isOddCursor(cursor: string): boolean {
  return cursor.charCodeAt(cursor.length - 1) % 2 === 1;
}

/**
 * A low-lane page that returned this cursor visited buckets of the high half:
 * an odd cursor after the half's first bucket ("1"), or "0" (it ran through
 * the half to the end: a small table fits in one page).
 */
function pastHalf(cursor: string): boolean {
  return cursor === '0' || (isOddCursor(cursor) && cursor !== '1');
}

interface SweepState {
  scanned: number;
  limitLeft: number;
  via: SweepResult['via'];
  /** Set when one master failed: the others stop too. */
  stop: boolean;
}

/**
 * A command the server refuses to run at all: by rights (NOPERM) or renamed away (EVAL, MGET): another way
 * may work (the client does a script's work; GETs do an MGET's).
 */
function commandRefused(err: BackendUnavailableError): boolean {
  // A command refused inside the script too (a review: a monitoring user without TIME, which only the
  // script's budget uses, had cache-info report Redis unavailable): the client-side way sends what it needs
  // itself, and is refused in turn where that is the refused command (UNLINK for a user with -unlink).
  return refusedCommand(err) || /unknown (?:redis )?command/i.test(describeError(err.cause));
}

/** The `*_version` fields Redis itself reports in INFO server; any other names another server. */
const REDIS_OWN_VERSIONS = new Set(['redis_version', 'gcc_version']);

/**
 * Whether a server's SCAN cursor is a plain reverse-binary dict cursor that two
 * lanes may split (see Lane), from its INFO server fields: Redis itself, not
 * in Cluster mode. An allowlist: a server that names itself (`server_name`) or
 * reports a `*_version` Redis does not (Valkey, Dragonfly, Garnet) is walked whole.
 */
export function scansInHalves(info: Record<string, string>): boolean {
  if (info.redis_mode !== 'standalone' || !/^\d+\./.test(info.redis_version ?? '') || 'server_name' in info) return false;
  return !Object.keys(info).some((f) => f.endsWith('_version') && !REDIS_OWN_VERSIONS.has(f));
}

/** `INFO` text -> { field: value } (sections merged; `# Section` lines skipped). */
export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    if (!line || line.startsWith('#')) continue;
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

/** The TTL class of a PTTL reply, as the sweep script computes it. */
function ttlClass(ttl: number): TtlClass {
  if (ttl === -1) return 4;
  if (ttl < 0) return 0;
  return ttl < 60_000 ? 1 : ttl < 3_600_000 ? 2 : 3;
}

const TAB = 9;
const LF = 10;

/** Two profile batches as one: the visitor sees the first's entries, then the second's. */
function joinProfiles(a: ProfileBatch, b: ProfileBatch): ProfileBatch {
  return {
    forEach(visit) {
      a.forEach(visit);
      b.forEach(visit);
    },
  };
}

/**
 * The profile script's reply: a line per key, `tenant TAB group TAB class TAB
 * bytes LF` (see sweep-script.ts), read in place: the visitor gets views into
 * the reply, so nothing is allocated per key.
 */
export function profileLines(text: Buffer): ProfileBatch {
  return {
    forEach(visit) {
      let at = 0;
      while (at < text.length) {
        const tab = text.indexOf(TAB, at);
        let i = tab + 1;
        let group = 0;
        while (text[i] !== TAB) group = group * 10 + text[i++] - 48;
        const ttl = (text[i + 1] - 48) as TtlClass;
        i += 3;
        let bytes = 0;
        while (text[i] !== LF) bytes = bytes * 10 + text[i++] - 48;
        visit(group - 1, text, at, tab, bytes, ttl);
        at = i + 1;
      }
    },
  };
}
