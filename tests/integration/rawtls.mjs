// rawtls.mjs: a TLS client that sends exact bytes, for tests that must
// control how a request is split (curl and openssl s_client do not).
//
//   node rawtls.mjs --port P --ca CA [--cert C --key K] [--gap MS] [--idle MS]
//        [--max MS] PART...
//
// Each PART is a file whose bytes are written as they are; between parts
// the client waits GAP ms (default 300), so each part reaches the server
// as its own TLS record and read. Everything received is written to
// stdout. The client ends when the server closes, after IDLE ms without
// data (default 2000) once all parts are sent, or after MAX ms in all
// (default 20000). Exit status 0 unless the connection could not be made.
import fs from "node:fs";
import tls from "node:tls";

const a = process.argv.slice(2);
const opt = { gap: 300, idle: 2000, max: 20000, parts: [] };
for (let i = 0; i < a.length; i++) {
  const k = a[i];
  if (k === "--port") opt.port = Number(a[++i]);
  else if (k === "--ca") opt.ca = a[++i];
  else if (k === "--cert") opt.cert = a[++i];
  else if (k === "--key") opt.key = a[++i];
  else if (k === "--gap") opt.gap = Number(a[++i]);
  else if (k === "--idle") opt.idle = Number(a[++i]);
  else if (k === "--max") opt.max = Number(a[++i]);
  else opt.parts.push(a[i]);
}
if (!opt.port || !opt.ca || opt.parts.length === 0) {
  process.stderr.write("usage: node rawtls.mjs --port P --ca CA [--cert C --key K] PART...\n");
  process.exit(2);
}
const parts = opt.parts.map((p) => fs.readFileSync(p));
const s = tls.connect({
  host: "127.0.0.1",
  port: opt.port,
  servername: "localhost",
  ca: fs.readFileSync(opt.ca),
  cert: opt.cert ? fs.readFileSync(opt.cert) : undefined,
  key: opt.key ? fs.readFileSync(opt.key) : undefined,
});
let idleTimer = null;
let sentAll = false;
const finish = () => {
  s.destroy();
  process.exit(0);
};
const armIdle = () => {
  if (!sentAll) return;
  clearTimeout(idleTimer);
  idleTimer = setTimeout(finish, opt.idle);
};
setTimeout(finish, opt.max);
s.on("data", (d) => {
  process.stdout.write(d);
  armIdle();
});
s.on("end", finish);
s.on("close", finish);
s.on("error", (e) => {
  process.stderr.write(`rawtls: ${e.message}\n`);
  process.exit(sentAll ? 0 : 1);
});
s.on("secureConnect", async () => {
  for (let i = 0; i < parts.length; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, opt.gap));
    if (s.destroyed) return;
    s.write(parts[i]);
  }
  sentAll = true;
  armIdle();
});
