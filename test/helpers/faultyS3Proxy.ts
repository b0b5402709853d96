/**
 * A loopback HTTP proxy in front of the S3 server that answers the first `failures` requests with
 * `503 SlowDown`, as S3 does when throttling, then forwards everything unchanged.
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FaultyProxy {
  endpoint: string;
  /** Requests answered with 503 so far. */
  faults(): number;
  close(): Promise<void>;
}

export async function startFaultyS3Proxy(target: string, failures: number): Promise<FaultyProxy> {
  const upstream = new URL(target);
  let faults = 0;
  const server: Server = createServer((req, res) => {
    if (faults < failures) {
      faults++;
      req.resume();
      res.writeHead(503, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>');
      return;
    }
    const forward = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    faults: () => faults,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
