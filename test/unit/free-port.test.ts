// freePort() picks ports for servers that bind them a little later, often in another process: from below the range
// the system hands out on its own, so an outgoing connection or a listen(0) in between cannot take them (the demo
// test once failed with EADDRINUSE on a port from that range).
import * as fs from 'node:fs';
import * as net from 'node:net';
import { freePort } from '../../demo/dev-server';

function bind(port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

test('ports come from below the ephemeral range, and each can be bound', async () => {
  const range = fs.existsSync('/proc/sys/net/ipv4/ip_local_port_range')
    ? fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number)
    : [32768, 60999];
  for (let i = 0; i < 30; i++) {
    const port = await freePort();
    expect(port).toBeGreaterThanOrEqual(20_000);
    expect(port + 1000).toBeLessThan(range[0]!);
    const server = await bind(port);
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('a port in use is never given: the next try, and port 0 after the last', async () => {
  const held = await bind(20_000);
  try {
    // Every try lands on the held port first, then on 20 011 (11 / 11 000 of the range).
    let calls = 0;
    const second = await freePort(() => (calls++ === 0 ? 0 : 11 / 11_000));
    expect(second).toBe(20_011);
    // Every try lands on the held port: what port 0 gives.
    const fallback = await freePort(() => 0);
    expect(fallback).not.toBe(20_000);
    expect(fallback).toBeGreaterThan(0);
  } finally {
    await new Promise<void>((r) => held.close(() => r()));
  }
});
