// The Node client against real servers (tests/component/test_node_client.py starts them):
//   SATCHEL_TARGET        `satchel dev` (open, on 127.0.0.1)
//   SATCHEL_AUTH_TARGET   the same with a caller that must send SATCHEL_AUTH_KEY as its bearer key,
//                         granted players eu-<digits> only, one call per player (then a wait)
//   SATCHEL_AUTH_PLAYER   a player id that caller is granted

import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { inspect } from "node:util";

import * as grpc from "@grpc/grpc-js";

import { SatchelClient, SatchelError } from "../src/client.ts";

function env(name: string): string {
  const value = process.env[name];
  assert.ok(value, `${name} is not set: run this through tests/component/test_node_client.py`);
  return value;
}

async function refused(call: Promise<unknown>): Promise<SatchelError> {
  const error = await call.then(
    () => assert.fail("the call succeeded"),
    (caught: unknown) => caught,
  );
  assert.ok(error instanceof SatchelError, `not a SatchelError: ${String(error)}`);
  return error;
}

describe("satchel dev", () => {
  const client = new SatchelClient(env("SATCHEL_TARGET"));
  after(() => client.close());

  test("issues a token for the player's folder only", async () => {
    const token = await client.issueToken("p1", ["write", "read"], { ttlSeconds: 1800 });
    assert.match(token.credentials.accessKeyId, /^STS\./);
    assert.ok(token.credentials.securityToken.length > 0);
    assert.deepEqual(token.permissions, ["read", "write"]);
    assert.equal(token.location.prefix, "players/p1/");
    assert.ok(token.credentials.expiration.getTime() > Date.now() + 15 * 60_000);
    const shown = inspect(token);
    assert.ok(!shown.includes(token.credentials.accessKeySecret), "the secret shows in inspect()");
    assert.ok(!shown.includes(token.credentials.securityToken), "the token shows in inspect()");
  });

  test("presigns a PUT and a GET that work with fetch", async () => {
    const body = `saved by node at ${new Date().toISOString()}`;
    const put = await client.presign("p1", "saves/node.dat", "PUT", {
      contentType: "text/plain",
      expiresInSeconds: 600,
      contentLength: Buffer.byteLength(body),
    });
    assert.equal(put.method, "PUT");
    assert.equal(put.key, "players/p1/saves/node.dat");
    assert.equal(put.headers["Content-Type"] ?? put.headers["content-type"], "text/plain");
    assert.equal(put.headers["Content-Length"], String(Buffer.byteLength(body)));
    assert.ok(!inspect(put).includes(new URL(put.url).search), "the signature shows in inspect()");
    // fetch sets Content-Length from the body itself: the signed value, for this body.
    const { "Content-Length": _signedLength, ...sent } = put.headers;
    const uploaded = await fetch(put.url, { method: "PUT", headers: sent, body });
    assert.equal(uploaded.status, 200, await uploaded.text());
    const longer = await fetch(put.url, { method: "PUT", headers: sent, body: body + "!" });
    assert.equal(longer.status, 403, "a body of another size must be refused");

    const get = await client.presign("p1", "saves/node.dat", "GET");
    assert.ok(get.expiration.getTime() > Date.now());
    const downloaded = await fetch(get.url, { headers: get.headers });
    assert.equal(downloaded.status, 200);
    assert.equal(await downloaded.text(), body);
  });

  test("presigns many objects in one call, each answered or refused on its own", async () => {
    const keys = ["gallery/node-1.txt", "gallery/node-2.txt"];
    const puts = await client.presignMany("p1", [
      { key: keys[0]!, method: "PUT", contentType: "text/plain", contentLength: "item 0".length },
      { key: "../p2/stolen.txt", method: "PUT", contentLength: 1 },
      { key: keys[1]!, method: "PUT", contentType: "text/plain", contentLength: "item 1".length },
    ]);
    assert.equal(puts.length, 3);
    const refusal = puts[1];
    assert.ok(refusal instanceof SatchelError, `item 1 was not refused: ${inspect(refusal)}`);
    assert.equal(refusal.code, grpc.status.INVALID_ARGUMENT);
    assert.deepEqual(
      refusal.fieldViolations.map((v) => v.field),
      ["items[1].key"],
    );
    const uploads = [puts[0], puts[2]];
    for (const [index, put] of uploads.entries()) {
      assert.ok(!(put instanceof SatchelError), String(put));
      assert.ok(put && !inspect(put).includes(new URL(put.url).search), "the signature shows in inspect()");
      const uploaded = await fetch(put!.url, { method: "PUT", headers: put!.headers, body: `item ${index}` });
      assert.equal(uploaded.status, 200, await uploaded.text());
    }
    const gets = await client.presignMany(
      "p1",
      keys.map((key) => ({ key })),
    );
    for (const [index, get] of gets.entries()) {
      assert.ok(!(get instanceof SatchelError), String(get));
      assert.equal(get.key, `players/p1/${keys[index]}`);
      const downloaded = await fetch(get.url);
      assert.equal(await downloaded.text(), `item ${index}`);
    }
  });

  test("a key outside the rules is INVALID_ARGUMENT naming the field", async () => {
    const error = await refused(client.presign("p1", "../p2/save.dat", "GET"));
    assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
    assert.equal(error.codeName, "INVALID_ARGUMENT");
    assert.deepEqual(
      error.fieldViolations.map((v) => v.field),
      ["key"],
    );
    assert.ok(error.fieldViolations[0]?.description);
  });

  test("an unknown scope is refused with its field named", async () => {
    const error = await refused(client.issueToken("p1", ["read"], { scope: "no-such-scope" }));
    assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
    assert.deepEqual(
      error.fieldViolations.map((v) => v.field),
      ["scope"],
    );
  });
});

describe("a server with callers", () => {
  const target = env("SATCHEL_AUTH_TARGET");
  const player = env("SATCHEL_AUTH_PLAYER");

  const client = new SatchelClient(target, { apiKey: env("SATCHEL_AUTH_KEY") });
  after(() => client.close());

  test("the caller's bearer key is sent and accepted", async () => {
    const token = await client.issueToken(player, ["read"]);
    assert.equal(token.location.prefix, `players/${player}/`);
  });

  test("a player outside the caller's grant is PERMISSION_DENIED", async () => {
    const error = await refused(client.issueToken("p1", ["read"]));
    assert.equal(error.code, grpc.status.PERMISSION_DENIED);
  });

  test("a player over the rate limit is RESOURCE_EXHAUSTED with the wait", async () => {
    await client.presign("eu-2", "saves/a.dat", "GET");
    const error = await refused(client.presign("eu-2", "saves/a.dat", "GET"));
    assert.equal(error.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.ok(error.retryDelayMs !== undefined && error.retryDelayMs > 0, String(error.retryDelayMs));
  });

  for (const [name, apiKey] of [
    ["no bearer key", undefined],
    ["a wrong bearer key", "sat_wrong_key"],
  ] as const) {
    test(`${name} is UNAUTHENTICATED`, async () => {
      const stranger = new SatchelClient(target, apiKey === undefined ? {} : { apiKey });
      try {
        const error = await refused(stranger.issueToken(player, ["read"]));
        assert.equal(error.code, grpc.status.UNAUTHENTICATED);
        assert.deepEqual(error.fieldViolations, []);
      } finally {
        stranger.close();
      }
    });
  }
});
