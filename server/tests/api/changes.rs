//! Edits, deletions and reactions: who may do what, what everyone sees live, in history, and
//! on resume (the room revision cursor).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

/// Alice (owner), Bob and Carol (members) in one public room; returns their tokens and the room.
async fn three_in_a_room(app: &TestApp) -> (String, String, String, i64) {
    let alice = app.signup_ok(&bot(), "alice").await;
    let bob = app.signup_ok(&bot(), "bob").await;
    let carol = app.signup_ok(&bot(), "carol").await;
    let room = app.create_room(&alice, "general", "public").await;
    assert_eq!(app.join(&bob, room).await.status(), StatusCode::OK);
    assert_eq!(app.join(&carol, room).await.status(), StatusCode::OK);
    (alice, bob, carol, room)
}

async fn post(app: &TestApp, token: &str, room: i64, client_id: &str, body: &str) -> Value {
    let resp = app.post_message(token, room, client_id, body).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    resp.json().await.expect("json")
}

async fn edit(app: &TestApp, token: &str, room: i64, id: &Value, body: &str) -> reqwest::Response {
    app.authed(
        token,
        Method::PATCH,
        &format!("/api/rooms/{room}/messages/{id}"),
        Some(json!({ "body": body })),
    )
    .await
}

async fn delete(app: &TestApp, token: &str, room: i64, id: &Value) -> reqwest::Response {
    app.authed(
        token,
        Method::DELETE,
        &format!("/api/rooms/{room}/messages/{id}"),
        None,
    )
    .await
}

async fn react(
    app: &TestApp,
    token: &str,
    method: Method,
    room: i64,
    id: &Value,
    emoji: &str,
) -> reqwest::Response {
    let path = format!(
        "/api/rooms/{room}/messages/{id}/reactions/{}",
        percent(emoji)
    );
    app.authed(token, method, &path, None).await
}

fn percent(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

#[tokio::test]
async fn the_author_edits_and_everyone_sees_it_live_and_in_history() {
    let app = spawn_app().await;
    let (alice, bob, _carol, room) = three_in_a_room(&app).await;
    let m = post(&app, &alice, room, "c1", "helo").await;
    let mut b = app.ws(&bob).await;

    let resp = edit(&app, &alice, room, &m["id"], "hello **all**").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let edited: Value = resp.json().await.unwrap();
    assert_eq!(edited["body"], "hello **all**");
    assert!(edited["edited_at"].as_i64().is_some());
    assert_eq!(edited["rev"], 1);
    assert_eq!(edited["seq"], m["seq"], "an edit keeps the message's place");

    let live = b.recv("message_updated").await;
    assert_eq!(live["message"], edited);

    let page: Value = app.history(&bob, room, "").await.json().await.unwrap();
    assert_eq!(page["messages"][0], edited);
    // Nothing new was posted: an edit is not a message.
    b.assert_no("message").await;
}

#[tokio::test]
async fn the_server_sends_each_body_parsed_and_plain_bodies_bare() {
    let app = spawn_app().await;
    let (alice, bob, _carol, room) = three_in_a_room(&app).await;
    let mut b = app.ws(&bob).await;

    // Plain text (one paragraph of lines) travels as the body alone.
    let plain = post(&app, &alice, room, "p1", "just words\nand a second line!").await;
    assert!(plain.get("formatted").is_none(), "{plain}");

    // Anything else carries its nodes: live, in history, and for the sender.
    let rich = post(&app, &alice, room, "r1", "**Done**, @bob: https://e.org").await;
    let nodes = json!([{"p": [
        {"b": [{"t": "Done"}]}, {"t": ", "}, {"at": "bob"}, {"t": ": "},
        {"a": {"href": "https://e.org", "children": [{"t": "https://e.org"}]}}
    ]}]);
    assert_eq!(rich["formatted"], nodes);
    let first = b.recv("message").await;
    assert_eq!(first["message"]["id"], plain["id"]);
    assert!(first["message"].get("formatted").is_none());
    assert_eq!(b.recv("message").await["message"], rich);
    let page: Value = app.history(&bob, room, "").await.json().await.unwrap();
    assert_eq!(page["messages"][1], rich);

    // Raw HTML and unsafe links arrive inert: text, never a link or markup.
    let evil = post(
        &app,
        &alice,
        room,
        "e1",
        "<img src=x onerror=alert(1)> [x](javascript:alert(1))",
    )
    .await;
    assert_eq!(
        evil["formatted"],
        json!([{"p": [{"t": "<img src=x onerror=alert(1)> x"}]}])
    );

    // A reply quotes the original's plain text.
    b.send(
        json!({"type": "send", "room_id": room, "client_id": "q1", "body": "ok",
        "reply_to": rich["id"]}),
    )
    .await;
    let sent = b.recv("sent").await;
    assert_eq!(
        sent["message"]["reply_to"]["excerpt"],
        "Done, @bob: https://e.org"
    );

    // An edit re-parses: to plain text drops the nodes, and back.
    let resp = edit(&app, &alice, room, &rich["id"], "no more formatting").await;
    let edited: Value = resp.json().await.unwrap();
    assert!(edited.get("formatted").is_none(), "{edited}");
    assert_eq!(b.recv("message_updated").await["message"], edited);
    let resp = edit(&app, &alice, room, &plain["id"], "now *some*").await;
    let edited: Value = resp.json().await.unwrap();
    assert_eq!(
        edited["formatted"],
        json!([{"p": [{"t": "now "}, {"i": [{"t": "some"}]}]}])
    );

    // Nesting is capped: a body nesting ~2,000 quotes is stored, keeps its text, and arrives
    // as nodes any JSON decoder takes (serde_json stops at 128 levels); the server lives on.
    let deep = post(
        &app,
        &alice,
        room,
        "d1",
        &format!("{}deep", "> ".repeat(1990)),
    )
    .await;
    let live = b
        .recv_where("the deep message", |f| f["message"]["id"] == deep["id"])
        .await;
    fn depth(v: &Value) -> usize {
        match v {
            Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
            Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }
    let nodes = &live["message"]["formatted"];
    assert!(depth(nodes) < 100, "{} levels", depth(nodes));
    assert!(nodes.to_string().contains("deep"));
    let page: Value = app.history(&bob, room, "").await.json().await.unwrap();
    let last = page["messages"].as_array().and_then(|m| m.last()).cloned();
    assert_eq!(last.map(|m| m["id"].clone()), Some(deep["id"].clone()));
}

#[tokio::test]
async fn nobody_edits_someone_elses_message_not_even_the_owner() {
    let app = spawn_app().await;
    let (alice, bob, _carol, room) = three_in_a_room(&app).await;
    let m = post(&app, &bob, room, "b1", "bob's words").await;
    for token in [&alice, &app.signup_ok(&bot(), "mallory").await] {
        let resp = edit(&app, token, room, &m["id"], "not bob's words").await;
        assert!(
            matches!(resp.status(), StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
            "{}",
            resp.status()
        );
    }
    // The owner gets 403 (a member without the right); an outsider 404 (sees nothing).
    assert_eq!(
        error_code(
            edit(&app, &alice, room, &m["id"], "x").await,
            StatusCode::FORBIDDEN
        )
        .await,
        "forbidden"
    );
    let page: Value = app.history(&bob, room, "").await.json().await.unwrap();
    assert_eq!(page["messages"][0]["body"], "bob's words");
    assert!(page["messages"][0].get("edited_at").is_none());
}

#[tokio::test]
async fn edits_are_validated_like_messages_and_unknown_ids_are_404() {
    let app = spawn_app().await;
    let (alice, _bob, _carol, room) = three_in_a_room(&app).await;
    let m = post(&app, &alice, room, "a1", "text").await;
    assert_eq!(
        error_code(
            edit(&app, &alice, room, &m["id"], "   ").await,
            StatusCode::BAD_REQUEST
        )
        .await,
        "invalid_message"
    );
    let too_long = "x".repeat(4001);
    assert_eq!(
        edit(&app, &alice, room, &m["id"], &too_long).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        edit(&app, &alice, room, &json!(999_999), "x")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    // A message of another room through this room's path: 404, nothing changes.
    let other = app.create_room(&alice, "other", "public").await;
    let there = post(&app, &alice, other, "a2", "elsewhere").await;
    assert_eq!(
        edit(&app, &alice, room, &there["id"], "moved?")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_author_or_an_admin_deletes_and_the_content_is_gone_from_storage() {
    let app = spawn_app().await;
    let (alice, bob, carol, room) = three_in_a_room(&app).await;
    let by_bob = post(&app, &bob, room, "b1", "secret plans").await;
    let by_carol = post(&app, &carol, room, "c1", "carol's note").await;
    post(&app, &alice, room, "a1", "unchanged words").await;
    let reply = app
        .authed(
            &carol,
            Method::POST,
            &format!("/api/rooms/{room}/messages"),
            Some(json!({"client_id": "c2", "body": "re", "reply_to": by_bob["id"]})),
        )
        .await;
    assert_eq!(reply.status(), StatusCode::CREATED);
    let mut c = app.ws(&carol).await;

    // A plain member may not delete another's message.
    assert_eq!(
        error_code(
            delete(&app, &carol, room, &by_bob["id"]).await,
            StatusCode::FORBIDDEN
        )
        .await,
        "forbidden"
    );
    // The author may.
    let resp = delete(&app, &bob, room, &by_bob["id"]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let tomb: Value = resp.json().await.unwrap();
    assert_eq!(tomb["deleted"], true);
    assert_eq!(tomb["body"], "");
    assert_eq!(c.recv("message_updated").await["message"], tomb);
    // The owner may delete anyone's.
    assert_eq!(
        delete(&app, &alice, room, &by_carol["id"]).await.status(),
        StatusCode::OK
    );
    // Deleting twice is fine; editing or reacting to a deleted message is a conflict.
    assert_eq!(
        delete(&app, &bob, room, &by_bob["id"]).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        edit(&app, &bob, room, &by_bob["id"], "back").await.status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        react(&app, &bob, Method::PUT, room, &by_bob["id"], "👍")
            .await
            .status(),
        StatusCode::CONFLICT
    );

    let page: Value = app.history(&carol, room, "").await.json().await.unwrap();
    let msgs = page["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 4, "tombstones keep their place");
    assert_eq!(msgs[0]["deleted"], true);
    assert_eq!(msgs[3]["reply_to"]["deleted"], true);
    assert_eq!(msgs[3]["reply_to"]["excerpt"], "");

    // Gone from the database file itself, not just hidden: after a checkpoint moves the WAL
    // into the main file, the words are nowhere in it.
    let db_path = app.db_path();
    let mut conn = app.db().await;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await
        .unwrap();
    let bytes = std::fs::read(&db_path).unwrap();
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(
        contains(b"unchanged words"),
        "the checkpoint reached the file"
    );
    assert!(
        !contains(b"secret plans"),
        "the deleted text is still in the database file"
    );
}

#[tokio::test]
async fn reactions_toggle_per_user_and_show_who_reacted() {
    let app = spawn_app().await;
    let (alice, bob, carol, room) = three_in_a_room(&app).await;
    let (a_id, b_id) = (app.user_id(&alice).await, app.user_id(&bob).await);
    let m = post(&app, &carol, room, "c1", "lunch?").await;
    let mut c = app.ws(&carol).await;

    let r = react(&app, &alice, Method::PUT, room, &m["id"], "👍").await;
    assert_eq!(r.status(), StatusCode::OK);
    let r: Value = react(&app, &bob, Method::PUT, room, &m["id"], "👍")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        r["reactions"],
        json!([{"emoji": "👍", "users": [a_id, b_id]}])
    );
    // Adding again changes nothing (idempotent) and publishes nothing.
    let again = react(&app, &bob, Method::PUT, room, &m["id"], "👍").await;
    assert_eq!(again.status(), StatusCode::OK);
    let live1 = c.recv("message_updated").await;
    let live2 = c.recv("message_updated").await;
    assert_eq!(live1["message"]["reactions"][0]["users"], json!([a_id]));
    assert_eq!(live2["message"], r);
    c.assert_no("message_updated").await;

    let r: Value = react(&app, &alice, Method::DELETE, room, &m["id"], "👍")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["reactions"], json!([{"emoji": "👍", "users": [b_id]}]));
    let r: Value = react(&app, &bob, Method::DELETE, room, &m["id"], "👍")
        .await
        .json()
        .await
        .unwrap();
    assert!(r.get("reactions").is_none(), "no reactions left: {r}");
}

#[tokio::test]
async fn reactions_are_emoji_only_and_limited_per_message() {
    let app = spawn_app().await;
    let (alice, _bob, _carol, room) = three_in_a_room(&app).await;
    let m = post(&app, &alice, room, "a1", "react to me").await;
    for junk in ["x", "<b>", "👍👍", "hello 👍"] {
        assert_eq!(
            react(&app, &alice, Method::PUT, room, &m["id"], junk)
                .await
                .status(),
            StatusCode::BAD_REQUEST,
            "{junk}"
        );
    }
    let emoji: Vec<&str> = ["😀", "😃", "😄", "😁", "😆", "😅", "🤣", "😂", "🙂", "🙃"]
        .into_iter()
        .chain(["😉", "😊", "😇", "🥰", "😍", "🤩", "😘", "😗", "😚", "😙"])
        .collect();
    for e in &emoji {
        assert_eq!(
            react(&app, &alice, Method::PUT, room, &m["id"], e)
                .await
                .status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        error_code(
            react(&app, &alice, Method::PUT, room, &m["id"], "🎉").await,
            StatusCode::CONFLICT
        )
        .await,
        "conflict"
    );
    // An outsider cannot react (nor learn that the message exists).
    let eve = app.signup_ok(&bot(), "eve").await;
    assert_eq!(
        react(&app, &eve, Method::PUT, room, &m["id"], "😀")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn resume_brings_the_changes_missed_while_away_exactly_once() {
    let app = spawn_app().await;
    let (alice, bob, _carol, room) = three_in_a_room(&app).await;
    let m1 = post(&app, &alice, room, "a1", "one").await;
    let m2 = post(&app, &alice, room, "a2", "two").await;
    let m3 = post(&app, &alice, room, "a3", "three").await;
    // Bob holds all three (seq 3) and the room as of revision 1.
    react(&app, &bob, Method::PUT, room, &m1["id"], "👍").await;
    let (mut b, _) = app
        .ws_hello(
            &bob,
            json!([{"room_id": room, "last_seq": 3, "last_rev": 1}]),
        )
        .await;
    let synced = b.recv("synced").await;
    assert_eq!(synced["last_rev"], 1);
    assert!(synced.get("updated").is_none(), "nothing changed since");
    drop(b);

    // While Bob is away: an edit, a deletion, a reaction, and a new message that is then edited.
    edit(&app, &alice, room, &m2["id"], "two, edited").await;
    delete(&app, &alice, room, &m3["id"]).await;
    react(&app, &alice, Method::PUT, room, &m1["id"], "🎉").await;
    let m4 = post(&app, &alice, room, "a4", "four").await;
    edit(&app, &alice, room, &m4["id"], "four, edited").await;

    let (mut b, _) = app
        .ws_hello(
            &bob,
            json!([{"room_id": room, "last_seq": 3, "last_rev": 1}]),
        )
        .await;
    let synced = b.recv("synced").await;
    assert_eq!(synced["limited"], false);
    assert_eq!(synced["last_rev"], 5);
    // The new message comes in its current state...
    assert_eq!(seqs(&synced["messages"]), [4]);
    assert_eq!(synced["messages"][0]["body"], "four, edited");
    // ...and the held ones that changed, each once, in their current state.
    let updated = synced["updated"].as_array().unwrap();
    let ids: Vec<&Value> = updated.iter().map(|m| &m["id"]).collect();
    assert_eq!(ids, [&m2["id"], &m3["id"], &m1["id"]]);
    assert_eq!(updated[0]["body"], "two, edited");
    assert_eq!(updated[1]["deleted"], true);
    assert_eq!(updated[2]["reactions"].as_array().unwrap().len(), 2);

    // Then the live stream continues with the next revision.
    edit(&app, &alice, room, &m1["id"], "one, edited").await;
    let live = b.recv("message_updated").await;
    assert_eq!(live["message"]["rev"], 6);
    b.assert_no("message_updated").await;

    // A client up to date gets nothing again.
    let (mut b, _) = app
        .ws_hello(
            &bob,
            json!([{"room_id": room, "last_seq": 4, "last_rev": 6}]),
        )
        .await;
    let synced = b.recv("synced").await;
    assert!(synced.get("updated").is_none());
    assert_eq!(synced["messages"], json!([]));
}

#[tokio::test]
async fn revisions_survive_a_restart() {
    let mut first = spawn_app().await;
    let (alice, bob, _carol, room) = three_in_a_room(&first).await;
    let m = post(&first, &alice, room, "a1", "one").await;
    edit(&first, &alice, room, &m["id"], "one!").await;
    let dir = std::mem::replace(&mut first.data_dir, tempfile::tempdir().unwrap());
    drop(first);
    let second = spawn_app_with(|c| c.data_dir = dir.path().join("data")).await;
    let (mut b, _) = second
        .ws_hello(
            &bob,
            json!([{"room_id": room, "last_seq": 1, "last_rev": 1}]),
        )
        .await;
    assert_eq!(b.recv("synced").await["last_rev"], 1);
    let resp = edit(&second, &alice, room, &m["id"], "one!!").await;
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["rev"], 2, "the revision counter continues where it was");
    assert_eq!(b.recv("message_updated").await["message"]["rev"], 2);
}
