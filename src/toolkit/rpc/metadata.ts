/**
 * Request or response metadata. Keys are lower-case; values of keys ending in
 * `-bin` are bytes, all others ASCII text (as the gRPC protocol requires).
 */
export type Metadata = Readonly<Record<string, string | Uint8Array>>;
