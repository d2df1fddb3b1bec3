// holdconn.mjs: hold one mTLS keep-alive connection through the gateway and
// report (epoch ms, sub-ms precision) when the server closes it.
//   node holdconn.mjs PORT CERT KEY CA TOKEN PATH [SECONDS]
// Prints "STATUS <code>" after the first response, then "CLOSED <epoch_ms>"
// when the connection is closed by the peer (or "TIMEOUT" after SECONDS).
import fs from 'node:fs';
import tls from 'node:tls';
import { performance } from 'node:perf_hooks';

const [port, cert, key, ca, token, path, secs = '20'] = process.argv.slice(2);
const now = () => performance.timeOrigin + performance.now();
const sock = tls.connect({
  host: '127.0.0.1', port: Number(port), cert: fs.readFileSync(cert), key: fs.readFileSync(key),
  ca: fs.readFileSync(ca), servername: 'localhost', ALPNProtocols: ['http/1.1'],
}, () => {
  sock.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\n\r\n`);
});
let buf = '';
let reported = false;
sock.on('data', (d) => {
  buf += d.toString('latin1');
  if (!reported && buf.includes('\r\n\r\n')) {
    reported = true;
    console.log(`STATUS ${buf.split(' ')[1]}`);
  }
});
const done = (what) => { console.log(what); process.exit(0); };
sock.on('end', () => done(`CLOSED ${now().toFixed(3)}`));
sock.on('close', () => done(`CLOSED ${now().toFixed(3)}`));
sock.on('error', () => done(`CLOSED ${now().toFixed(3)}`));
setTimeout(() => done('TIMEOUT'), Number(secs) * 1000);
