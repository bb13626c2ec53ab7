// The baseline Natter is measured against: the chat server a Node developer would write first.
//
// socket.io 4.8 with one room per conversation; each message is inserted into SQLite
// (better-sqlite3, WAL) before it is broadcast to the room, and the sender gets an
// acknowledgement carrying the stored id. History is a plain JSON endpoint over the same table.
//
// It speaks the same shape as Natter without accounts, so `natter-load --target baseline` can
// drive it (docs/perf.md, "The benchmark suite"):
//   connect  ws://HOST/socket.io/?EIO=4&transport=websocket, then the CONNECT packet
//            40{"user": 12, "rooms": [5, 100006]}  → the server joins the rooms and emits
//            "ready" (the equivalent of Natter's hello → ready);
//   send     42<ack>["send", {"room": 5, "client_id": "…", "body": "…"}]
//            → INSERT, then io.to(room).emit("message", …), then the ack 43<ack>[{"id": …}];
//   history  GET /api/rooms/:room/messages?before=<id>&limit=50: the 50 messages before
//            <id>, oldest first (like Natter's page).
//
// Kept honest: the same 200-byte bodies arrive, `synchronous=FULL` (SQLite's default, set
// explicitly because many WAL guides lower it) gives the same guarantee as Natter's
// (acknowledged means on disk), and nothing is batched, because the classic code is not. No
// authentication, presence or rate limits: everything this server skips makes it faster.
//
// Environment: PORT (0 = any free port), BASELINE_DB (the SQLite file), BASELINE_SYNCHRONOUS
// (FULL by default). Prints "listening on http://127.0.0.1:PORT" once ready.
'use strict';

const http = require('node:http');
const { Server } = require('socket.io');
const Database = require('better-sqlite3');

const port = Number(process.env.PORT || 0);
const dbPath = process.env.BASELINE_DB || 'baseline.db';
const synchronous = process.env.BASELINE_SYNCHRONOUS || 'FULL';

const db = new Database(dbPath);
db.pragma('journal_mode = WAL');
db.pragma(`synchronous = ${synchronous}`);
db.pragma('busy_timeout = 5000');
db.exec(`
  CREATE TABLE IF NOT EXISTS messages (
    id         INTEGER PRIMARY KEY,
    room       TEXT    NOT NULL,
    sender     TEXT    NOT NULL,
    client_id  TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS messages_by_room ON messages (room, id);
`);
const insert = db.prepare(
  'INSERT INTO messages (room, sender, client_id, body, created_at) VALUES (?, ?, ?, ?, ?)',
);
const page = db.prepare(
  'SELECT id, room, sender, client_id, body, created_at FROM messages ' +
    'WHERE room = ? AND id < ? ORDER BY id DESC LIMIT ?',
);

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/api/health') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"status":"ok"}');
    return;
  }
  const m = url.pathname.match(/^\/api\/rooms\/([^/]+)\/messages$/);
  if (m && req.method === 'GET') {
    const before = Number(url.searchParams.get('before') || Number.MAX_SAFE_INTEGER);
    const limit = Math.min(Math.max(Number(url.searchParams.get('limit') || 50), 1), 100);
    const rows = page.all(decodeURIComponent(m[1]), before, limit).reverse();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ messages: rows, has_more: rows.length === limit }));
    return;
  }
  // socket.io answers its own path; everything else is not ours.
  if (!url.pathname.startsWith('/socket.io/')) {
    res.writeHead(404);
    res.end();
  }
});

const io = new Server(server, { serveClient: false });

io.on('connection', (socket) => {
  const auth = socket.handshake.auth || {};
  const user = String(auth.user ?? socket.id);
  const rooms = Array.isArray(auth.rooms) ? auth.rooms.map(String) : [];
  socket.join(rooms);
  socket.emit('ready', { user, rooms });

  socket.on('send', (msg, ack) => {
    if (!msg || typeof msg.body !== 'string' || msg.body.length > 4000) return;
    const room = String(msg.room);
    if (!socket.rooms.has(room)) return;
    const createdAt = Date.now();
    const clientId = String(msg.client_id);
    const info = insert.run(room, user, clientId, msg.body, createdAt);
    const message = {
      id: Number(info.lastInsertRowid),
      room: msg.room,
      sender: user,
      client_id: clientId,
      body: msg.body,
      created_at: createdAt,
    };
    io.to(room).emit('message', message);
    if (typeof ack === 'function') ack({ id: message.id });
  });
});

server.listen(port, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});

function stop() {
  io.close();
  server.close();
  db.close();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
