/**
 * Single flight that never answers with something older than the call: concurrent calls for one key share
 * one load, but a call joins only a load that began after the call did. A load under way when a call begins
 * may have read a row that was replaced (and its cache entry invalidated) before the call: sharing it would
 * answer the call with the old value. Such a call waits for the next load instead, started when that one
 * ends and shared by every call that came meanwhile (at most two loads in turn, however many calls).
 */
export class FreshFlights<T> {
  /** Calls begun so far (a call's number orders it against the loads). */
  private calls = 0;
  private readonly flights = new Map<string, Flight<T>>();

  /** Numbers a call as it begins: take it before anything the load depends on is read. */
  begin(): number {
    return ++this.calls;
  }

  /** The load of `key` this call (numbered by begin) may share, or a new one. */
  join(key: string, call: number, load: () => Promise<T>): Promise<T> {
    const flight = this.flights.get(key);
    if (!flight) return this.takeOff(key, load).value;
    if (call <= flight.after) return flight.value;
    flight.next ??= flight.value.then(
      () => this.takeOff(key, load).value,
      () => this.takeOff(key, load).value,
    );
    return flight.next;
  }

  private takeOff(key: string, load: () => Promise<T>): Flight<T> {
    const flight: Flight<T> = { after: this.calls, value: load() };
    this.flights.set(key, flight);
    const land = () => {
      if (this.flights.get(key) === flight) this.flights.delete(key);
    };
    flight.value.then(land, land);
    return flight;
  }
}

interface Flight<T> {
  /** Calls numbered up to this one began before the load did, and may share it. */
  after: number;
  value: Promise<T>;
  /** The load after this one, for calls that began after this one did. */
  next?: Promise<T>;
}
