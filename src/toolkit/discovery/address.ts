/**
 * `host:port` or `[v6]:port`, the form discovery reports addresses in, split
 * into host (brackets removed) and port; undefined for anything else.
 */
export function parseAddress(address: string): { host: string; port: number } | undefined {
  const match = /^\[([^\]]+)\]:(\d+)$/.exec(address) ?? /^([^:/[\]]+):(\d+)$/.exec(address);
  return match === null ? undefined : { host: match[1] as string, port: Number(match[2]) };
}
