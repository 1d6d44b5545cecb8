/**
 * Measures how long this process's event loop could not run timers (a busy or
 * overloaded machine): the total lateness of a 5 ms ticker. Timing bounds in
 * tests add this much slack, since every timer in the process was late by as much.
 */
export function stallMeter(): { read(): number; stop(): void } {
  const interval = 5;
  let last = performance.now();
  let stalled = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    stalled += Math.max(0, now - last - interval);
    last = now;
  }, interval);
  return {
    read: () => Math.round(stalled + Math.max(0, performance.now() - last - interval)),
    stop: () => clearInterval(ticker),
  };
}
