/**
 * Request or response metadata. Keys are lower-case; values of keys ending in
 * `-bin` are bytes, all others ASCII text (as the gRPC protocol requires).
 */
export type Metadata = Readonly<Record<string, string | Uint8Array>>;

/** The text value of `key`; undefined when absent or binary. */
export function textValue(metadata: Metadata, key: string): string | undefined {
  const value = metadata[key];
  return typeof value === "string" ? value : undefined;
}
