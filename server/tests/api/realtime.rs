//! The WebSocket stream over real sockets: authentication, limits, delivery, order,
//! idempotency, gapless resume (also across restarts and kill -9), presence and typing.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;

use crate::helpers::*;

fn http_status(e: tungstenite::Error) -> u16 {
    match e {
        tungstenite::Error::Http(resp) => resp.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
}

/// Alice (owner) and Bob in one public room; returns (alice, bob, room).
async fn two_in_a_room(app: &TestApp) -> (String, String, i64) {
    let alice = app.signup_ok(&bot(), "alice").await;
    let bob = app.signup_ok(&bot(), "bob").await;
    let room = app.create_room(&alice, "general", "public").await;
    assert_eq!(app.join(&bob, room).await.status(), StatusCode::OK);
    (alice, bob, room)
}

#[tokio::test]
async fn the_socket_requires_a_live_session() {
    let app = spawn_app().await;
    assert_eq!(http_status(app.ws_raw(None, &[]).await.err().unwrap()), 401);
    assert_eq!(
        http_status(app.ws_raw(Some("forged"), &[]).await.err().unwrap()),
        401
    );
    let token = app.signup_ok(&bot(), "alice").await;
    app.authed(&token, Method::POST, "/api/auth/logout", Some(json!({})))
        .await;
    assert_eq!(
        http_status(app.ws_raw(Some(&token), &[]).await.err().unwrap()),
        401
    );
}

#[tokio::test]
async fn a_cross_site_upgrade_is_refused_before_101() {
    let app = spawn_app().await;
    let token = app.signup_ok(&bot(), "alice").await;
    let refused = app
        .ws_raw(Some(&token), &[("origin", "https://evil.example")])
        .await;
    assert_eq!(http_status(refused.err().unwrap()), 403);
    let ours = app.origin.clone();
    assert!(app.ws_raw(Some(&token), &[("origin", &ours)]).await.is_ok());
}

#[tokio::test]
async fn the_cookie_authenticates_the_socket_too() {
    let app = spawn_app().await;
    let token = app.signup_ok(&bot(), "alice").await;
    let cookie = format!("natter_session={token}");
    let mut ws = app
        .ws_raw(None, &[("cookie", &cookie)])
        .await
        .expect("upgrade");
    ws.send(json!({"type": "hello"})).await;
    let ready = ws.recv("ready").await;
    assert_eq!(ready["user"]["username"], "alice");
}

#[tokio::test]
async fn a_message_is_acked_after_storage_and_delivered_to_members_only() {
    let app = spawn_app().await;
    let (alice, bob, room) = two_in_a_room(&app).await;
    let eve = app.signup_ok(&bot(), "eve").await;
    let mut a = app.ws(&alice).await;
    let mut b = app.ws(&bob).await;
    let mut e = app.ws(&eve).await;

    a.send(send_frame(room, "c-1", "hello bob")).await;
    let sent = a.recv("sent").await;
    assert_eq!(sent["client_id"], "c-1");
    assert_eq!(sent["message"]["seq"], 1);
    // Acked means stored: history already has it.
    let page: Value = app.history(&bob, room, "").await.json().await.unwrap();
    assert_eq!(page["messages"][0], sent["message"]);

    let got = b.recv("message").await;
    assert_eq!(got["message"], sent["message"]);
    assert_eq!(got["message"]["body"], "hello bob");
    assert!(got["message"]["created_at"].as_i64().unwrap() > 0);
    e.assert_no("message").await;
}

#[tokio::test]
async fn a_non_member_cannot_post_or_type_even_by_guessing_the_room_id() {
    let app = spawn_app().await;
    let (alice, _bob, room) = two_in_a_room(&app).await;
    let eve = app.signup_ok(&bot(), "eve").await;
    let mut a = app.ws(&alice).await;
    let mut e = app.ws(&eve).await;
    for guess in [room, room + 7] {
        e.send(send_frame(guess, "e-1", "let me in")).await;
        let err = e.recv("error").await;
        assert_eq!(err["code"], "not_found");
        assert_eq!(err["client_id"], "e-1");
        e.send(json!({"type": "typing", "room_id": guess, "active": true}))
            .await;
        assert_eq!(e.recv("error").await["code"], "not_found");
    }
    a.assert_no("typing").await;
    let page: Value = app.history(&alice, room, "").await.json().await.unwrap();
    assert_eq!(page["messages"], json!([]));
}

#[tokio::test]
async fn malformed_and_out_of_order_frames_get_error_frames() {
    let app = spawn_app().await;
    let token = app.signup_ok(&bot(), "alice").await;
    let mut ws = app.ws_raw(Some(&token), &[]).await.unwrap();
    ws.send(json!({"type": "send", "room_id": 1, "client_id": "x", "body": "early"}))
        .await;
    assert_eq!(ws.recv("error").await["code"], "bad_frame");
    ws.send(json!({"type": "hello"})).await;
    ws.recv("ready").await;
    ws.send(json!({"type": "no_such_frame"})).await;
    assert_eq!(ws.recv("error").await["code"], "bad_frame");
    ws.send(json!({"type": "send", "room_id": 1, "client_id": "bad id!", "body": "x"}))
        .await;
    assert_eq!(ws.recv("error").await["code"], "invalid_client_id");
    ws.send(json!({"type": "send", "room_id": 1, "client_id": "ok", "body": "x".repeat(4001)}))
        .await;
    assert_eq!(ws.recv("error").await["code"], "invalid_message");
}

#[tokio::test]
async fn an_oversized_frame_closes_the_socket_with_1009() {
    let app = spawn_app().await;
    let token = app.signup_ok(&bot(), "alice").await;
    let (mut ws, _) = app.ws_hello(&token, json!([])).await;
    let big = "x".repeat(65 * 1024);
    ws.send(json!({"type": "typing", "room_id": 1, "active": true, "pad": big}))
        .await;
    let (ended, _) = ws.until_end().await;
    assert!(matches!(ended, Ended::Closed(Some(1009))), "{ended:?}");
}

#[tokio::test]
async fn a_flood_gets_an_error_then_1008_and_other_users_are_unaffected() {
    let app = spawn_app_with(|c| {
        c.limits.ws_burst = 5;
        c.limits.ws_frames_per_sec = 1;
    })
    .await;
    let (alice, bob, room) = two_in_a_room(&app).await;
    let mut a = app.ws(&alice).await;
    let mut b = app.ws(&bob).await;
    for i in 0..20 {
        a.send(json!({"type": "typing", "room_id": room, "active": i % 2 == 0}))
            .await;
    }
    let (ended, frames) = a.until_end().await;
    assert!(
        frames
            .iter()
            .any(|f| f["type"] == "error" && f["code"] == "rate_limited")
    );
    assert!(matches!(ended, Ended::Closed(Some(1008))), "{ended:?}");
    b.send(send_frame(room, "b-1", "still fine")).await;
    assert_eq!(b.recv("sent").await["message"]["body"], "still fine");
}

#[tokio::test]
async fn a_reader_that_never_reads_is_evicted_while_others_keep_receiving() {
    let app = spawn_app_with(|c| {
        c.limits.ws_outbox_frames = 64;
        c.limits.http_posts_per_minute = 10_000;
    })
    .await;
    let (alice, bob, room) = two_in_a_room(&app).await;
    let mut stuck = app.ws(&bob).await; // never reads during the burst
    let mut fine = app.ws(&bob).await;
    let body = "z".repeat(3900);
    let total = 3000;
    let mut posts = tokio::task::JoinSet::new();
    for worker in 0..16 {
        let (app_url, token, body) = (app.url(""), alice.clone(), body.clone());
        posts.spawn(async move {
            let client = bot();
            for i in (worker..total).step_by(16) {
                let resp = client
                    .post(format!("{app_url}/api/rooms/{room}/messages"))
                    .bearer_auth(&token)
                    .json(&json!({"client_id": format!("p{i}"), "body": body}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), StatusCode::CREATED);
            }
        });
    }
    // The reader that keeps up gets everything, in order.
    let mut next = 1;
    while next <= total {
        let m = fine.recv("message").await;
        assert_eq!(m["message"]["seq"], next);
        next += 1;
    }
    posts.join_all().await;
    let (ended, frames) = stuck.until_end().await;
    let delivered = frames.iter().filter(|f| f["type"] == "message").count();
    assert!(
        delivered < total as usize,
        "the stuck reader cannot have kept up"
    );
    assert!(
        matches!(ended, Ended::Closed(Some(4008)) | Ended::Dropped),
        "evicted: {ended:?}"
    );
}

#[tokio::test]
async fn a_retried_send_returns_the_original_and_is_delivered_once() {
    let app = spawn_app().await;
    let (alice, bob, room) = two_in_a_room(&app).await;
    let mut a = app.ws(&alice).await;
    let mut b = app.ws(&bob).await;
    a.send(send_frame(room, "same-id", "once")).await;
    a.send(send_frame(room, "same-id", "once")).await;
    let first = a.recv("sent").await;
    let second = a.recv("sent").await;
    assert_eq!(first["message"], second["message"]);
    // Also after reconnecting.
    drop(a);
    let mut a2 = app.ws(&alice).await;
    a2.send(send_frame(room, "same-id", "once")).await;
    assert_eq!(a2.recv("sent").await["message"], first["message"]);
    a2.send(send_frame(room, "other-id", "twice")).await;
    a2.recv("sent").await;
    let got1 = b.recv("message").await;
    let got2 = b.recv("message").await;
    assert_eq!(
        (
            got1["message"]["seq"].as_i64(),
            got2["message"]["seq"].as_i64()
        ),
        (Some(1), Some(2))
    );
    assert_eq!(got2["message"]["body"], "twice");
}

#[tokio::test]
async fn concurrent_senders_produce_one_order_seen_by_everyone() {
    let app = spawn_app().await;
    let (alice, bob, room) = two_in_a_room(&app).await;
    let carol = app.signup_ok(&bot(), "carol").await;
    app.join(&carol, room).await;
    let mut watchers = vec![app.ws(&alice).await, app.ws(&bob).await];
    let per_sender = 30;
    let mut senders = Vec::new();
    for (name, token) in [("a", &alice), ("b", &bob), ("c", &carol)] {
        let mut ws = app.ws(token).await;
        senders.push(tokio::spawn(async move {
            for i in 0..per_sender {
                ws.send(send_frame(
                    room,
                    &format!("{name}{i}"),
                    &format!("{name} {i}"),
                ))
                .await;
                // Stay under the per-connection rate limit.
                if i % 8 == 7 {
                    ws.recv_where("acks", |f| {
                        f["type"] == "sent" && f["client_id"] == format!("{name}{i}")
                    })
                    .await;
                }
            }
            ws
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    let total = 3 * per_sender;
    let mut orders = Vec::new();
    for w in &mut watchers {
        let mut order = Vec::new();
        while order.len() < total as usize {
            let m = w.recv("message").await;
            order.push((
                m["message"]["seq"].as_i64().unwrap(),
                m["message"]["id"].as_i64().unwrap(),
            ));
        }
        orders.push(order);
    }
    let expected: Vec<i64> = (1..=total).collect();
    assert_eq!(
        orders[0].iter().map(|o| o.0).collect::<Vec<_>>(),
        expected,
        "no gaps, no reordering"
    );
    assert_eq!(orders[0], orders[1], "everyone sees the same order");
    let page: Value = app
        .history(&alice, room, "?limit=100")
        .await
        .json()
        .await
        .unwrap();
    let stored: Vec<(i64, i64)> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["seq"].as_i64().unwrap(), m["id"].as_i64().unwrap()))
        .collect();
    assert_eq!(stored, orders[0], "history has the same order");
    let ids: HashSet<i64> = stored.iter().map(|s| s.1).collect();
    assert_eq!(ids.len(), total as usize);
}

#[tokio::test]
async fn resume_after_a_reconnect_delivers_exactly_what_was_missed_then_the_live_stream() {
    let app = spawn_app().await;
    let (alice, bob, room) = two_in_a_room(&app).await;
    for i in 1..=3 {
        app.post_message(&alice, room, &format!("old{i}"), "before")
            .await;
    }
    let mut b = app.ws(&bob).await;
    drop(b);
    for i in 4..=8 {
        app.post_message(&alice, room, &format!("m{i}"), &format!("missed {i}"))
            .await;
    }
    let (mut b2, _) = app
        .ws_hello(&bob, json!([{"room_id": room, "last_seq": 3}]))
        .await;
    let synced = b2.recv("synced").await;
    assert_eq!(synced["room_id"], room);
    assert_eq!(synced["limited"], false);
    assert_eq!(seqs(&synced["messages"]), [4, 5, 6, 7, 8]);
    app.post_message(&alice, room, "live", "live one").await;
    let live = b2.recv("message").await;
    assert_eq!(live["message"]["seq"], 9);
    b = b2;
    b.assert_no("message").await;
}

#[tokio::test]
async fn resume_is_gapless_across_a_server_restart() {
    let mut first = spawn_app().await;
    let (alice, bob, room) = two_in_a_room(&first).await;
    for i in 1..=4 {
        first
            .post_message(&alice, room, &format!("m{i}"), "x")
            .await;
    }
    let dir = std::mem::replace(&mut first.data_dir, tempfile::tempdir().unwrap());
    drop(first);
    let second = spawn_app_with(|c| c.data_dir = dir.path().join("data")).await;
    second
        .post_message(&alice, room, "m5", "after restart")
        .await;
    let (mut b, _) = second
        .ws_hello(&bob, json!([{"room_id": room, "last_seq": 2}]))
        .await;
    let synced = b.recv("synced").await;
    assert_eq!(seqs(&synced["messages"]), [3, 4, 5]);
    second.post_message(&alice, room, "m6", "live").await;
    assert_eq!(b.recv("message").await["message"]["seq"], 6);
}

#[tokio::test]
async fn a_huge_gap_answers_with_the_newest_page_and_limited() {
    let app = spawn_app_with(|c| c.limits.http_posts_per_minute = 10_000).await;
    let (alice, bob, room) = two_in_a_room(&app).await;
    let mut posts = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let (url, token) = (app.url(""), alice.clone());
        posts.spawn(async move {
            let client = bot();
            for i in (worker..260).step_by(8) {
                client
                    .post(format!("{url}/api/rooms/{room}/messages"))
                    .bearer_auth(&token)
                    .json(&json!({"client_id": format!("g{i}"), "body": "gap"}))
                    .send()
                    .await
                    .unwrap();
            }
        });
    }
    posts.join_all().await;
    let (mut b, _) = app
        .ws_hello(&bob, json!([{"room_id": room, "last_seq": 1}]))
        .await;
    let synced = b.recv("synced").await;
    assert_eq!(synced["limited"], true);
    assert_eq!(seqs(&synced["messages"]), (211..=260).collect::<Vec<_>>());
    // A client that is new to the room gets the newest page too.
    let (mut fresh, _) = app.ws_hello(&alice, json!([])).await;
    let synced = fresh.recv("synced").await;
    assert_eq!(seqs(&synced["messages"]).len(), 50);
    assert_eq!(synced["limited"], true);
}

#[tokio::test]
async fn presence_goes_online_and_offline_with_the_last_tab() {
    let app = spawn_app().await;
    let (alice, bob, _room) = two_in_a_room(&app).await;
    let bob_id = app.user_id(&bob).await;
    let mut a = app.ws(&alice).await;
    let (mut b1, _) = app.ws_hello(&bob, json!([])).await;
    let alice_id = app.user_id(&alice).await;
    // After `ready` and the catch-up, the new socket hears who is online already.
    let listed = b1.recv("presence").await;
    assert_eq!(
        presence_of(&listed, alice_id),
        Some(json!({"user_id": alice_id, "online": true})),
        "{listed}"
    );
    let online = a
        .recv_where("bob online", |f| {
            f["type"] == "presence" && presence_of(f, bob_id).is_some()
        })
        .await;
    assert_eq!(
        presence_of(&online, bob_id),
        Some(json!({"user_id": bob_id, "online": true}))
    );

    let (b2, _) = app.ws_hello(&bob, json!([])).await;
    drop(b1);
    a.assert_no("presence").await; // a second tab is still open
    drop(b2);
    let offline = a.recv("presence").await;
    let entry = presence_of(&offline, bob_id).expect("bob's presence");
    assert_eq!(entry["online"], false);
    assert!(entry["last_seen_at"].as_i64().unwrap() > 0);
    let members: Value = app
        .authed(
            &alice,
            Method::GET,
            &format!("/api/rooms/{_room}/members"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let bob_member = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user"]["id"] == bob_id)
        .unwrap();
    assert_eq!(bob_member["online"], false);
    assert!(bob_member["last_seen_at"].is_i64());
}

#[tokio::test]
async fn typing_reaches_the_other_members_but_not_the_typist() {
    let app = spawn_app().await;
    let (alice, bob, room) = two_in_a_room(&app).await;
    let alice_id = app.user_id(&alice).await;
    let mut a = app.ws(&alice).await;
    let mut b = app.ws(&bob).await;
    a.send(json!({"type": "typing", "room_id": room, "active": true}))
        .await;
    let typing = b.recv("typing").await;
    assert_eq!(
        typing,
        json!({"type": "typing", "room_id": room, "user_id": alice_id, "active": true})
    );
    a.send(json!({"type": "typing", "room_id": room, "active": false}))
        .await;
    assert_eq!(b.recv("typing").await["active"], false);
    a.assert_no("typing").await;
}

#[tokio::test]
async fn a_kicked_member_stops_receiving_at_once() {
    let app = spawn_app().await;
    let (alice, bob, room) = two_in_a_room(&app).await;
    let bob_id = app.user_id(&bob).await;
    let mut a = app.ws(&alice).await;
    let mut b = app.ws(&bob).await;
    let kicked = app
        .authed(
            &alice,
            Method::DELETE,
            &format!("/api/rooms/{room}/members/{bob_id}"),
            None,
        )
        .await;
    assert_eq!(kicked.status(), StatusCode::NO_CONTENT);
    let left = b.recv("room_left").await;
    assert_eq!(
        (left["room_id"].as_i64(), left["reason"].as_str()),
        (Some(room), Some("kicked"))
    );
    assert_eq!(a.recv("member_left").await["user_id"], bob_id);
    a.send(send_frame(room, "after", "bob should not see this"))
        .await;
    a.recv("sent").await;
    b.assert_no("message").await;
    b.send(send_frame(room, "b-late", "let me back")).await;
    assert_eq!(b.recv("error").await["code"], "not_found");
}

#[tokio::test]
async fn joining_invitations_and_dms_appear_live_on_open_sockets() {
    let app = spawn_app().await;
    let alice = app.signup_ok(&bot(), "alice").await;
    let bob = app.signup_ok(&bot(), "bob").await;
    let mut b = app.ws(&bob).await;
    let room = app.create_room(&alice, "secret", "private").await;
    app.post_message(&alice, room, "s1", "before bob").await;
    app.authed(
        &alice,
        Method::POST,
        &format!("/api/rooms/{room}/members"),
        Some(json!({"username": "bob"})),
    )
    .await;
    let joined = b.recv("room_joined").await;
    assert_eq!(joined["room"]["id"], room);
    let synced = b.recv("synced").await;
    assert_eq!(synced["messages"][0]["body"], "before bob");
    app.post_message(&alice, room, "s2", "hi bob").await;
    assert_eq!(b.recv("message").await["message"]["body"], "hi bob");

    let dm: Value = app
        .authed(
            &alice,
            Method::POST,
            "/api/dms",
            Some(json!({"username": "bob"})),
        )
        .await
        .json()
        .await
        .unwrap();
    let joined = b.recv("room_joined").await;
    assert_eq!(joined["room"]["id"], dm["id"]);
    assert_eq!(joined["room"]["kind"], "dm");
    assert_eq!(joined["room"]["name"], "alice");
}

#[tokio::test]
async fn logout_closes_that_sessions_sockets() {
    let app = spawn_app().await;
    let (alice, _bob, _room) = two_in_a_room(&app).await;
    let other_session = app.login_ok(&bot(), "alice").await;
    let mut a = app.ws(&alice).await;
    let mut other = app.ws(&other_session).await;
    app.authed(&alice, Method::POST, "/api/auth/logout", Some(json!({})))
        .await;
    let (ended, _) = a.until_end().await;
    assert!(matches!(ended, Ended::Closed(Some(4001))), "{ended:?}");
    other
        .send(json!({"type": "typing", "room_id": _room, "active": true}))
        .await;
    other.assert_no("error").await;
    app.authed(
        &other_session,
        Method::POST,
        "/api/auth/logout-all",
        Some(json!({})),
    )
    .await;
    let (ended, _) = other.until_end().await;
    assert!(matches!(ended, Ended::Closed(Some(4001))), "{ended:?}");
}

#[tokio::test]
async fn connections_per_user_are_capped() {
    let app = spawn_app_with(|c| c.limits.ws_per_user = 2).await;
    let token = app.signup_ok(&bot(), "alice").await;
    let _one = app.ws(&token).await;
    let _two = app.ws(&token).await;
    let third = app.ws_raw(Some(&token), &[]).await;
    assert_eq!(http_status(third.err().unwrap()), 429);
}

#[tokio::test]
async fn an_acked_message_survives_kill_9_and_a_clean_stop_empties_the_wal() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let data = tempfile::tempdir().unwrap();
    let start = || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_natter"))
            .env("NATTER_ADDR", "127.0.0.1:0")
            .env("NATTER_DATA_DIR", data.path())
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = lines.next().expect("server output").unwrap();
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        // Keep draining the pipe so the server never blocks on logging.
        std::thread::spawn(move || for _ in lines {});
        (child, addr)
    };
    let (mut server, addr) = start();
    let client = bot();
    let token: Value = client
        .post(format!("http://{addr}/api/auth/signup"))
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_owned();
    let room: Value = client
        .post(format!("http://{addr}/api/rooms"))
        .bearer_auth(&token)
        .json(&json!({"name": "durable"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let room = room["id"].as_i64().unwrap();

    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{addr}/ws"),
    )
    .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (stream, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut ws = Ws { stream };
    ws.send(json!({"type": "hello"})).await;
    ws.recv("ready").await;
    ws.send(send_frame(room, "durable-1", "survive this")).await;
    let sent = ws.recv("sent").await;
    server.kill().unwrap(); // SIGKILL, right after the ack
    server.wait().unwrap();

    let (mut server, addr) = start();
    // The room's newest message, as a client reads it from the server at `addr`.
    let newest = |addr: String| {
        let (client, token) = (&client, &token);
        async move {
            let page: Value = client
                .get(format!("http://{addr}/api/rooms/{room}/messages"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            page["messages"][0].clone()
        }
    };
    assert_eq!(newest(addr).await, sent["message"]);

    // A clean stop (SIGTERM) copies the WAL back into the database file and empties it, so the
    // next start has nothing to read back (docs/perf.md, eleventh round).
    let wal = data.path().join("natter.db-wal");
    assert!(std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0));
    let term = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert!(server.wait().unwrap().success());
    assert_eq!(std::fs::metadata(&wal).map_or(0, |m| m.len()), 0);
    let (mut server, addr) = start();
    assert_eq!(newest(addr).await, sent["message"]);
    server.kill().unwrap();
    server.wait().unwrap();
}

#[tokio::test]
async fn a_peer_that_stops_answering_heartbeats_is_dropped_and_goes_offline() {
    let app = spawn_app_with(|c| {
        c.limits.ws_ping_every = std::time::Duration::from_millis(100);
        c.limits.ws_dead_after = std::time::Duration::from_millis(400);
    })
    .await;
    let (alice, bob, _room) = two_in_a_room(&app).await;
    let bob_id = app.user_id(&bob).await;
    let mut a = app.ws(&alice).await;
    // Alice keeps reading (and so answers pings). Bob says hello, then never reads again: his
    // client answers no ping from now on.
    let (_silent_bob, _) = app.ws_hello(&bob, json!([])).await;
    let online = a.recv("presence").await;
    assert_eq!(presence_of(&online, bob_id).unwrap()["online"], true);
    let offline = a
        .recv_where("bob offline", |f| {
            f["type"] == "presence" && presence_of(f, bob_id).is_some()
        })
        .await;
    assert_eq!(presence_of(&offline, bob_id).unwrap()["online"], false);
}

#[tokio::test]
async fn an_idempotent_retry_works_across_a_server_restart() {
    let mut first = spawn_app().await;
    let (alice, _bob, room) = two_in_a_room(&first).await;
    let original: Value = first
        .post_message(&alice, room, "before-restart", "once")
        .await
        .json()
        .await
        .unwrap();
    let dir = std::mem::replace(&mut first.data_dir, tempfile::tempdir().unwrap());
    drop(first);
    let second = spawn_app_with(|c| c.data_dir = dir.path().join("data")).await;
    let (mut ws, _) = second
        .ws_hello(&alice, json!([{"room_id": room, "last_seq": 1}]))
        .await;
    ws.send(send_frame(room, "before-restart", "once")).await;
    assert_eq!(ws.recv("sent").await["message"], original);
    let page: Value = second.history(&alice, room, "").await.json().await.unwrap();
    assert_eq!(seqs(&page["messages"]), [1]);
}

#[tokio::test]
async fn shutting_down_closes_every_socket_with_1001() {
    let mut app = spawn_app().await;
    let (alice, bob, _room) = two_in_a_room(&app).await;
    let mut a = app.ws(&alice).await;
    let mut b = app.ws(&bob).await;
    app.stop();
    for ws in [&mut a, &mut b] {
        let (ended, _) = ws.until_end().await;
        assert!(matches!(ended, Ended::Closed(Some(1001))), "{ended:?}");
    }
}

/// The sockets a stopping server closes end after its background writers have stopped: when
/// their users were last seen must still reach the database before it closes.
#[tokio::test]
async fn a_stopping_server_records_when_the_users_of_its_open_sockets_were_last_seen() {
    let mut app = spawn_app().await;
    let (alice, bob, _room) = two_in_a_room(&app).await;
    let ids = [app.user_id(&alice).await, app.user_id(&bob).await];
    let mut a = app.ws(&alice).await;
    let mut b = app.ws(&bob).await;
    app.stop();
    for ws in [&mut a, &mut b] {
        ws.until_end().await;
    }
    // The server finishes stopping after the sockets are closed: wait for the rows.
    let seen = stored_last_seen(&app, &ids).await;
    assert_eq!(seen.len(), 2, "both users' last-seen times are stored");
    assert!(seen.iter().all(|&at| at > 0));
}

/// A running server writes when users went offline in batches, soon after.
#[tokio::test]
async fn a_running_server_stores_when_a_user_was_last_seen() {
    let app = spawn_app().await;
    let (alice, bob, _room) = two_in_a_room(&app).await;
    let bob_id = app.user_id(&bob).await;
    let _a = app.ws(&alice).await;
    let b = app.ws(&bob).await;
    assert!(stored_last_seen_now(&app, &[bob_id]).await.is_empty());
    drop(b);
    let seen = stored_last_seen(&app, &[bob_id]).await;
    assert_eq!(seen.len(), 1, "bob's last-seen time is stored");
}

/// The users of `ids` whose last-seen time is stored, once all are or after ten seconds.
async fn stored_last_seen(app: &TestApp, ids: &[i64]) -> Vec<i64> {
    let mut seen = Vec::new();
    for _ in 0..200 {
        seen = stored_last_seen_now(app, ids).await;
        if seen.len() == ids.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    seen
}

async fn stored_last_seen_now(app: &TestApp, ids: &[i64]) -> Vec<i64> {
    use sqlx::Row;
    let mut db = app.db().await;
    let mut seen = Vec::new();
    for &id in ids {
        let row = sqlx::query("SELECT last_seen_at FROM users WHERE id = ?")
            .bind(id)
            .fetch_one(&mut db)
            .await
            .unwrap();
        seen.extend(row.get::<Option<i64>, _>(0));
    }
    seen
}

#[tokio::test]
async fn a_socket_that_says_no_hello_in_time_is_closed_and_one_that_does_stays() {
    let app =
        spawn_app_with(|c| c.limits.ws_hello_within = std::time::Duration::from_secs(1)).await;
    let token = app.signup_ok(&bot(), "alice").await;
    let mut mute = app.ws_raw(Some(&token), &[]).await.expect("upgrade");
    let mut talker = app.ws(&token).await;
    let (ended, _) = mute.until_end().await;
    assert!(matches!(ended, Ended::Closed(Some(4002))), "{ended:?}");
    // Well past its own hello deadline, the socket that said hello is still served.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    talker
        .send(json!({"type": "typing", "room_id": 999_999, "active": true}))
        .await;
    assert_eq!(talker.recv("error").await["code"], "not_found");
}

#[tokio::test]
async fn an_open_socket_closes_when_its_session_expires() {
    let app = spawn_app_with(|c| c.session_ttl = std::time::Duration::from_secs(2)).await;
    let token = app.signup_ok(&bot(), "alice").await;
    let mut ws = app.ws(&token).await;
    let (ended, _) = ws.until_end().await;
    assert!(matches!(ended, Ended::Closed(Some(4001))), "{ended:?}");
}

#[tokio::test]
async fn a_reply_carries_a_quote_of_the_original_live_in_history_and_on_resume() {
    let app = spawn_app().await;
    let (alice, bob, room) = two_in_a_room(&app).await;
    let other_room = app.create_room(&alice, "elsewhere", "public").await;
    let original: Value = app
        .post_message(&alice, room, "orig", "What time is the meeting?")
        .await
        .json()
        .await
        .unwrap();
    let foreign: Value = app
        .post_message(&alice, other_room, "f1", "x")
        .await
        .json()
        .await
        .unwrap();
    let mut a = app.ws(&alice).await;
    let mut b = app.ws(&bob).await;

    b.send(
        json!({"type": "send", "room_id": room, "client_id": "r1", "body": "At ten.",
        "reply_to": original["id"]}),
    )
    .await;
    let sent = b.recv("sent").await;
    let quote = &sent["message"]["reply_to"];
    assert_eq!(quote["id"], original["id"]);
    assert_eq!(quote["seq"], original["seq"]);
    assert_eq!(quote["sender_id"], original["sender_id"]);
    assert_eq!(quote["excerpt"], "What time is the meeting?");
    assert_eq!(a.recv("message").await["message"], sent["message"]);
    let page: Value = app.history(&alice, room, "").await.json().await.unwrap();
    assert_eq!(page["messages"][1], sent["message"]);
    let (mut fresh, _) = app
        .ws_hello(&alice, json!([{"room_id": room, "last_seq": 1}]))
        .await;
    let synced = fresh
        .recv_where("synced for the room", |f| {
            f["type"] == "synced" && f["room_id"] == room
        })
        .await;
    assert_eq!(synced["messages"][0], sent["message"]);

    // Only messages of the same room can be quoted.
    b.send(
        json!({"type": "send", "room_id": room, "client_id": "r2", "body": "hm",
        "reply_to": foreign["id"]}),
    )
    .await;
    let err = b.recv("error").await;
    assert_eq!(
        (err["code"].as_str(), err["client_id"].as_str()),
        (Some("not_found"), Some("r2"))
    );
    let page: Value = app.history(&alice, room, "").await.json().await.unwrap();
    assert_eq!(seqs(&page["messages"]), [1, 2]);
}

/// The entry about `user` in a `presence` frame.
fn presence_of(frame: &Value, user: i64) -> Option<Value> {
    frame["users"]
        .as_array()?
        .iter()
        .find(|p| p["user_id"] == user)
        .cloned()
}

#[tokio::test]
async fn many_arrivals_reach_a_member_in_a_few_batched_presence_frames() {
    const ARRIVALS: usize = 40;
    let app = spawn_app_with(|c| c.limits.signups_per_ip = 100).await;
    let owner = app.signup_ok(&bot(), "owner").await;
    let room = app.create_room(&owner, "town-hall", "public").await;
    let mut tokens = Vec::new();
    for i in 0..ARRIVALS {
        let token = app.signup_ok(&bot(), &format!("member{i}")).await;
        assert_eq!(app.join(&token, room).await.status(), StatusCode::OK);
        tokens.push(token);
    }
    let mut ids = std::collections::HashSet::new();
    for t in &tokens {
        ids.insert(app.user_id(t).await);
    }
    let mut watcher = app.ws(&owner).await;
    // Everyone arrives at once, as after a server restart.
    let sockets = futures_util::future::join_all(tokens.iter().map(|t| app.ws(t))).await;
    let mut frames = 0;
    while !ids.is_empty() {
        let f = watcher.recv("presence").await;
        frames += 1;
        for u in f["users"].as_array().unwrap() {
            assert!(u["online"].as_bool().unwrap());
            ids.remove(&u["user_id"].as_i64().unwrap());
        }
    }
    assert!(
        frames < ARRIVALS / 2,
        "{ARRIVALS} arrivals came in {frames} presence frames: not batched"
    );
    drop(sockets);
}
