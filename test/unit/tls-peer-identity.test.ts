import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseSubjectAltNames, peerIdentityOf } from "../../src/toolkit/tls/peer-identity.js";

describe("parseSubjectAltNames", () => {
  it("reads Node's subjectaltname format", () => {
    assert.deepEqual(parseSubjectAltNames("DNS:localhost, IP Address:127.0.0.1, URI:spiffe://switchyard/order-service"), [
      { type: "DNS", value: "localhost" },
      { type: "IP Address", value: "127.0.0.1" },
      { type: "URI", value: "spiffe://switchyard/order-service" },
    ]);
  });

  it("unquotes values Node quoted because they hold a comma", () => {
    assert.deepEqual(parseSubjectAltNames('URI:"spiffe://x/a,b", DNS:b'), [
      { type: "URI", value: "spiffe://x/a,b" },
      { type: "DNS", value: "b" },
    ]);
  });

  it("is empty without a SAN", () => {
    assert.deepEqual(parseSubjectAltNames(undefined), []);
    assert.deepEqual(parseSubjectAltNames(""), []);
  });
});

describe("peerIdentityOf", () => {
  it("prefers the URI SAN (a SPIFFE ID)", () => {
    assert.equal(peerIdentityOf({ subjectaltname: "DNS:order-service, URI:spiffe://switchyard/order-service" }), "spiffe://switchyard/order-service");
  });

  it("falls back to the first DNS SAN", () => {
    assert.equal(peerIdentityOf({ subjectaltname: "IP Address:10.0.0.1, DNS:billing, DNS:billing.internal" }), "billing");
  });

  it("is undefined without a certificate or without a URI or DNS SAN (a CN is no identity)", () => {
    assert.equal(peerIdentityOf(undefined), undefined);
    assert.equal(peerIdentityOf({ subjectaltname: "IP Address:10.0.0.1" }), undefined);
    assert.equal(peerIdentityOf({ subjectaltname: "" }), undefined);
  });
});
