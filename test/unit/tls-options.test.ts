// How the --tls-* flags of serve, call and health become TLS settings.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Command } from "commander";
import { clientTlsOf, serveTlsOf, type ServeTlsFlags } from "../../src/cli/tls-options.js";

/** A command whose error() throws instead of exiting. */
function command(): Command {
  return new Command().exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
}

const serve = (flags: Partial<ServeTlsFlags>) => serveTlsOf({ tlsReloadInterval: 60_000, ...flags }, command());

describe("serveTlsOf", () => {
  it("is plaintext both ways without flags", () => {
    assert.deepEqual(serve({}), {});
    assert.deepEqual(serve({ userService: "users:50051" }), {});
  });

  it("serves TLS with a certificate, and mTLS with a CA", () => {
    assert.deepEqual(serve({ tlsCert: "s.pem", tlsKey: "s-key.pem" }), {
      tls: { certFile: "s.pem", keyFile: "s-key.pem", reloadIntervalMs: 60_000 },
    });
    assert.deepEqual(serve({ tlsCert: "s.pem", tlsKey: "s-key.pem", tlsCa: "ca.pem", tlsReloadInterval: 500 }).tls, {
      certFile: "s.pem",
      keyFile: "s-key.pem",
      clientCaFile: "ca.pem",
      reloadIntervalMs: 500,
    });
  });

  it("calls UserService over mTLS with --client-cert, verifying it with --tls-ca unless --user-service-ca says otherwise", () => {
    const base = { tlsCert: "s.pem", tlsKey: "s-key.pem", tlsCa: "ca.pem", userService: "users:50051", clientCert: "c.pem", clientKey: "c-key.pem" };
    assert.deepEqual(serve(base).userServiceTls, { caFile: "ca.pem", certFile: "c.pem", keyFile: "c-key.pem", reloadIntervalMs: 60_000 });
    assert.deepEqual(serve({ ...base, userServiceCa: "users-ca.pem", userServiceServerName: "users.internal" }).userServiceTls, {
      caFile: "users-ca.pem",
      certFile: "c.pem",
      keyFile: "c-key.pem",
      serverName: "users.internal",
      reloadIntervalMs: 60_000,
    });
  });

  it("calls UserService over TLS with the system's CAs when only a server name is given", () => {
    assert.deepEqual(serve({ userService: "users.example:443", userServiceServerName: "users.example" }).userServiceTls, {
      serverName: "users.example",
      reloadIntervalMs: 60_000,
    });
  });

  it("refuses flags that do not fit together", () => {
    const refusals: Array<[Partial<ServeTlsFlags>, RegExp]> = [
      [{ tlsCert: "s.pem" }, /--tls-cert and --tls-key go together/],
      [{ tlsKey: "k.pem" }, /--tls-cert and --tls-key go together/],
      [{ tlsCa: "ca.pem" }, /--tls-ca .* needs --tls-cert and --tls-key/],
      [{ userService: "u:1", clientCert: "c.pem" }, /--client-cert and --client-key go together/],
      [{ clientCert: "c.pem", clientKey: "k.pem" }, /which is not given/],
      [{ userServiceCa: "ca.pem" }, /which is not given/],
    ];
    for (const [flags, message] of refusals) assert.throws(() => serve(flags), message, JSON.stringify(flags));
  });
});

describe("clientTlsOf", () => {
  it("is plaintext without flags", () => {
    assert.equal(clientTlsOf({}, command()), undefined);
  });

  it("turns TLS on with --tls or any other --tls-* flag", () => {
    assert.deepEqual(clientTlsOf({ tls: true }, command()), {});
    assert.deepEqual(clientTlsOf({ tlsServerName: "users.internal" }, command()), { serverName: "users.internal" });
    assert.deepEqual(clientTlsOf({ tlsCa: "ca.pem", tlsCert: "c.pem", tlsKey: "k.pem" }, command()), {
      caFile: "ca.pem",
      certFile: "c.pem",
      keyFile: "k.pem",
    });
  });

  it("refuses a certificate without its key", () => {
    assert.throws(() => clientTlsOf({ tlsCert: "c.pem" }, command()), /--tls-cert and --tls-key go together/);
  });
});
