// Starts one real Natter server for the whole run and tears it down afterwards.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export default async function globalSetup(): Promise<() => Promise<void>> {
  const root = path.resolve(__dirname, '..');
  const bin = process.env.NATTER_BIN ?? path.join(root, 'target/debug/natter');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'natter-e2e-'));
  const site = process.env.NATTER_SITE_ROOT ?? path.join(root, 'target/site');
  // A lock left by an interrupted run of the deployment test (readstate.spec.ts).
  fs.rmSync(path.join(site, '.deploy-test-lock'), { recursive: true, force: true });
  const server = spawn(bin, [], {
    env: {
      ...process.env,
      NATTER_ADDR: '127.0.0.1:0',
      NATTER_DATA_DIR: dataDir,
      NATTER_SITE_ROOT: site,
      // Every test signs up fresh users from 127.0.0.1.
      NATTER_SIGNUPS_PER_IP_PER_HOUR: '100000',
      RUST_LOG: process.env.RUST_LOG ?? 'info',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });

  const url = await new Promise<string>((resolve, reject) => {
    let seen = '';
    let found = false;
    const timer = setTimeout(() => {
      server.kill('SIGKILL');
      reject(new Error(`natter did not start; output:\n${seen}`));
    }, 60_000);
    server.stdout.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      if (process.env.E2E_SERVER_LOG) process.stdout.write(text);
      if (found) return; // keep draining the pipe so the server never blocks on logging
      seen += text;
      const m = seen.match(/listening on (http:\/\/\S+)/);
      if (m) {
        found = true;
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    server.on('exit', (code) => {
      clearTimeout(timer);
      if (!found) reject(new Error(`natter exited with ${code}; output:\n${seen}`));
    });
  });
  process.env.NATTER_URL = url;

  return async () => {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
}
