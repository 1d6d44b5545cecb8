import type { PeerCertificate } from "node:tls";

/** One subjectAltName entry, e.g. `{ type: "URI", value: "spiffe://switchyard/order-service" }`. */
export interface SubjectAltName {
  /** `DNS`, `IP Address`, `URI`, `email`, … as Node names them. */
  readonly type: string;
  readonly value: string;
}

/**
 * Parses Node's `subjectaltname` string (`DNS:a, IP Address:127.0.0.1,
 * URI:spiffe://x/y`). Node quotes a value that holds a comma or a quote as a
 * JSON string; those are unquoted here.
 */
export function parseSubjectAltNames(subjectaltname: string | undefined): SubjectAltName[] {
  if (!subjectaltname) return [];
  const names: SubjectAltName[] = [];
  const entry = /([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/y;
  let match: RegExpExecArray | null;
  while (entry.lastIndex < subjectaltname.length && (match = entry.exec(subjectaltname)) !== null) {
    const [, type = "", raw = ""] = match;
    let value = raw;
    if (raw.startsWith('"')) {
      try {
        value = JSON.parse(raw) as string;
      } catch {
        // Not a JSON string after all: keep it as written.
      }
    }
    names.push({ type: type.trim(), value });
  }
  return names;
}

/**
 * The identity a verified peer certificate proves: its first URI SAN (a SPIFFE
 * ID such as `spiffe://switchyard/order-service`), else its first DNS SAN.
 * Undefined without a certificate or without either kind of SAN: the subject's
 * CN is not an identity (RFC 6125 and SPIFFE agree).
 */
export function peerIdentityOf(certificate: Pick<PeerCertificate, "subjectaltname"> | undefined): string | undefined {
  const names = parseSubjectAltNames(certificate?.subjectaltname);
  return names.find((name) => name.type === "URI")?.value ?? names.find((name) => name.type === "DNS")?.value;
}
