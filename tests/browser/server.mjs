// Starts the real supportbot binary on a free loopback port with a fresh data dir.
//
//   SUPPORTBOT_BIN  the binary (default <repo>/target/debug/supportbot)
//   TEST_KB_DIR     knowledge base (default <repo>/knowledge-base)
//   TEST_FLOWS_DIR  flows (default <repo>/flows)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const HEALTH_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 10_000;

/** A port that was free a moment ago: bind port 0, read it, close. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export class SupportbotServer {
  constructor() {
    this.bin = process.env.SUPPORTBOT_BIN || path.join(repo, 'target', 'debug', 'supportbot');
    this.kbDir = process.env.TEST_KB_DIR || path.join(repo, 'knowledge-base');
    this.flowsDir = process.env.TEST_FLOWS_DIR || path.join(repo, 'flows');
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'supportbot-browser-'));
    this.dataDir = path.join(this.tmp, 'data');
    this.logFile = path.join(this.tmp, 'server.log');
    this.port = 0;
    this.proc = null;
  }

  /**
   * A fresh server: new port, new data dir. `config` is the text of a TOML configuration
   * file (e.g. `[[tokens]]`, `[[teams]]`, `[handoff]`), passed with `--config`.
   */
  static async start({ config } = {}) {
    const server = new SupportbotServer();
    if (config) {
      server.configFile = path.join(server.tmp, 'supportbot.toml');
      fs.writeFileSync(server.configFile, config);
    }
    if (!fs.existsSync(server.bin)) {
      throw new Error(`supportbot binary not found at ${server.bin}; run \`cargo build\` or set SUPPORTBOT_BIN`);
    }
    server.port = await freePort();
    await server.spawn();
    return server;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** (Re)starts the process on the same port and data dir and waits for /healthz. */
  async spawn() {
    if (this.proc) throw new Error('server already running');
    const log = fs.openSync(this.logFile, 'a');
    fs.writeSync(log, `\n--- starting ${this.bin} on ${this.url} ---\n`);
    const proc = spawn(this.bin, [
      'serve',
      '--listen', `127.0.0.1:${this.port}`,
      '--data-dir', this.dataDir,
      '--kb-dir', this.kbDir,
      '--flows-dir', this.flowsDir,
      ...(this.configFile ? ['--config', this.configFile] : []),
    ], { cwd: repo, stdio: ['ignore', log, log], env: { RUST_LOG: 'info', ...process.env } });
    fs.closeSync(log);
    this.proc = proc;
    const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    this.exited = exited;

    const deadline = Date.now() + HEALTH_TIMEOUT_MS;
    let gone = null;
    exited.then((r) => { gone = r; });
    while (Date.now() < deadline) {
      if (gone) {
        this.proc = null;
        throw new Error(`supportbot exited during start-up (${JSON.stringify(gone)}):\n${this.log()}`);
      }
      try {
        const res = await fetch(`${this.url}/healthz`);
        if (res.status === 200) return;
      } catch { /* not listening yet */ }
      await new Promise((r) => setTimeout(r, 200));
    }
    await this.stop();
    throw new Error(`supportbot not healthy after ${HEALTH_TIMEOUT_MS / 1000}s:\n${this.log()}`);
  }

  /** SIGTERM, then SIGKILL if it does not stop in time. */
  async stop() {
    const proc = this.proc;
    if (!proc) return;
    this.proc = null;
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await this.exited;
    clearTimeout(timer);
  }

  async restart() {
    await this.stop();
    await this.spawn();
  }

  /**
   * The demo agent a start without agents creates: its e-mail and one-time password, as
   * printed in the log (`… log in as <email> with password <password> …`).
   */
  demoAgent() {
    const m = this.log().match(/log in as (\S+) with password (\S+)/);
    return m ? { email: m[1], password: m[2] } : null;
  }

  /** The server's output so far (for failure reports). */
  log() {
    try { return fs.readFileSync(this.logFile, 'utf8'); } catch { return '(no log)'; }
  }

  /** Stops the server and removes its temp dir. */
  async dispose() {
    await this.stop();
    fs.rmSync(this.tmp, { recursive: true, force: true });
  }
}
