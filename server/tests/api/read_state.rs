//! Read markers, unread and mention counts, mute, and the receipts privacy setting.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

async fn room_summary(app: &TestApp, token: &str, room: i64) -> Value {
    let resp = app
        .authed(token, Method::GET, &format!("/api/rooms/{room}"), None)
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

async fn mark_read(app: &TestApp, token: &str, room: i64, seq: i64) -> reqwest::Response {
    app.authed(
        token,
        Method::POST,
        &format!("/api/rooms/{room}/read"),
        Some(json!({ "seq": seq })),
    )
    .await
}

#[tokio::test]
async fn unread_and_mention_counts_follow_the_marker() {
    let app = spawn_app().await;
    let alice = app.signup_ok(&bot(), "alice").await;
    let bob = app.signup_ok(&bot(), "bob").await;
    let room = app.create_room(&alice, "general", "public").await;
    app.join(&bob, room).await;
    for (i, body) in [
        "hi all",
        "@bob are you there?",
        "and @carol too",
        "**@BOB** again",
    ]
    .iter()
    .enumerate()
    {
        app.post_message(&alice, room, &format!("a{i}"), body).await;
    }
    let s = room_summary(&app, &bob, room).await;
    assert_eq!(
        (s["unread"].as_i64(), s["mentions"].as_i64()),
        (Some(4), Some(2))
    );
    assert_eq!(s["last_read_seq"], 0);
    // Alice wrote them all: nothing is unread for her.
    let s = room_summary(&app, &alice, room).await;
    assert_eq!(
        (s["unread"].as_i64(), s["last_read_seq"].as_i64()),
        (Some(0), Some(4))
    );

    let state: Value = mark_read(&app, &bob, room, 2).await.json().await.unwrap();
    assert_eq!(
        state,
        json!({"room_id": room, "last_read_seq": 2, "unread": 2, "mentions": 1})
    );
    // Never backwards, never past the newest message.
    let state: Value = mark_read(&app, &bob, room, 1).await.json().await.unwrap();
    assert_eq!(state["last_read_seq"], 2);
    let state: Value = mark_read(&app, &bob, room, 99).await.json().await.unwrap();
    assert_eq!(state["last_read_seq"], 4);
    assert_eq!(
        (state["unread"].as_i64(), state["mentions"].as_i64()),
        (Some(0), Some(0))
    );

    // Bob replying marks the room read up to his message.
    app.post_message(&alice, room, "a9", "one more").await;
    app.post_message(&bob, room, "b1", "here").await;
    assert_eq!(room_summary(&app, &bob, room).await["unread"], 0);
    // Outsiders cannot touch a marker of a room they are not in.
    let eve = app.signup_ok(&bot(), "eve").await;
    assert_eq!(
        mark_read(&app, &eve, room, 1).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_mention_of_a_non_member_or_of_yourself_counts_for_nobody() {
    let app = spawn_app().await;
    let alice = app.signup_ok(&bot(), "alice").await;
    let carol = app.signup_ok(&bot(), "carol").await;
    let room = app.create_room(&alice, "general", "public").await;
    app.post_message(&alice, room, "a1", "@carol @alice hello")
        .await;
    app.join(&carol, room).await;
    let s = room_summary(&app, &carol, room).await;
    assert_eq!(
        (s["unread"].as_i64(), s["mentions"].as_i64()),
        (Some(1), Some(0))
    );
    // An edit that adds a mention counts; deleting the message removes it.
    let id: Value = app
        .post_message(&alice, room, "a2", "no mention yet")
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/api/rooms/{room}/messages/{}", id["id"]);
    app.authed(
        &alice,
        Method::PATCH,
        &path,
        Some(json!({"body": "now @carol"})),
    )
    .await;
    assert_eq!(room_summary(&app, &carol, room).await["mentions"], 1);
    app.authed(&alice, Method::DELETE, &path, None).await;
    assert_eq!(room_summary(&app, &carol, room).await["mentions"], 0);
}

#[tokio::test]
async fn muting_is_per_member_and_shown_in_the_summary() {
    let app = spawn_app().await;
    let alice = app.signup_ok(&bot(), "alice").await;
    let bob = app.signup_ok(&bot(), "bob").await;
    let room = app.create_room(&alice, "general", "public").await;
    app.join(&bob, room).await;
    let resp = app
        .authed(
            &bob,
            Method::PUT,
            &format!("/api/rooms/{room}/mute"),
            Some(json!({"muted": true})),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap()["muted"], true);
    assert_eq!(room_summary(&app, &alice, room).await["muted"], false);
    let eve = app.signup_ok(&bot(), "eve").await;
    let resp = app
        .authed(
            &eve,
            Method::PUT,
            &format!("/api/rooms/{room}/mute"),
            Some(json!({"muted": true})),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn receipts_are_shared_by_default_and_the_setting_hides_them_both_ways() {
    let app = spawn_app().await;
    let alice = app.signup_ok(&bot(), "alice").await;
    let bob = app.signup_ok(&bot(), "bob").await;
    let bob_id = app.user_id(&bob).await;
    let alice_id = app.user_id(&alice).await;
    let room = app.create_room(&alice, "general", "public").await;
    app.join(&bob, room).await;
    app.post_message(&alice, room, "a1", "one").await;
    app.post_message(&alice, room, "a2", "two").await;
    mark_read(&app, &bob, room, 1).await;
    let marker_of = |members: &Value, id: i64| -> Value {
        members
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["user"]["id"] == id)
            .map(|m| m.get("last_read_seq").cloned().unwrap_or(Value::Null))
            .unwrap()
    };
    let members_path = format!("/api/rooms/{room}/members");
    let seen_by_alice: Value = app
        .authed(&alice, Method::GET, &members_path, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(marker_of(&seen_by_alice, bob_id), 1);

    let settings: Value = app
        .authed(&bob, Method::GET, "/api/settings", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(settings, json!({"share_receipts": true}));
    let resp = app
        .authed(
            &bob,
            Method::PATCH,
            "/api/settings",
            Some(json!({"share_receipts": false})),
        )
        .await;
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"share_receipts": false})
    );
    // Alice no longer sees how far Bob read...
    let seen_by_alice: Value = app
        .authed(&alice, Method::GET, &members_path, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(marker_of(&seen_by_alice, bob_id), Value::Null);
    // ...and Bob no longer sees Alice's.
    let seen_by_bob: Value = app
        .authed(&bob, Method::GET, &members_path, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(marker_of(&seen_by_bob, alice_id), Value::Null);
    // His own counts still work.
    assert_eq!(room_summary(&app, &bob, room).await["unread"], 1);
}

#[tokio::test]
async fn reading_in_one_tab_updates_the_others_and_sends_receipts_to_those_who_share() {
    let app = spawn_app().await;
    let alice = app.signup_ok(&bot(), "alice").await;
    let bob = app.signup_ok(&bot(), "bob").await;
    let carol = app.signup_ok(&bot(), "carol").await;
    let bob_id = app.user_id(&bob).await;
    let room = app.create_room(&alice, "general", "public").await;
    app.join(&bob, room).await;
    app.join(&carol, room).await;
    app.authed(
        &carol,
        Method::PATCH,
        "/api/settings",
        Some(json!({"share_receipts": false})),
    )
    .await;
    for i in 0..3 {
        app.post_message(&alice, room, &format!("a{i}"), "hello")
            .await;
    }
    let mut tab1 = app.ws(&bob).await;
    let mut tab2 = app.ws(&bob).await;
    let mut a = app.ws(&alice).await;
    let mut c = app.ws(&carol).await;

    tab1.send(json!({"type": "read", "room_id": room, "seq": 2}))
        .await;
    let state = tab2.recv("read_state").await;
    assert_eq!(
        state,
        json!({"type": "read_state", "room_id": room, "last_read_seq": 2, "unread": 1, "mentions": 0})
    );
    assert_eq!(tab1.recv("read_state").await["last_read_seq"], 2);
    let receipt = a.recv("receipts").await;
    assert_eq!(
        receipt,
        json!({"type": "receipts", "room_id": room, "reads": [{"user_id": bob_id, "last_read_seq": 2}]})
    );
    // Carol does not share hers, so she sees nobody's.
    c.assert_no("receipts").await;
    // Reading backwards changes nothing and sends nothing.
    tab1.send(json!({"type": "read", "room_id": room, "seq": 1}))
        .await;
    a.assert_no("receipts").await;

    // Bob stops sharing: his reads no longer reach Alice, but his own tabs stay in sync.
    app.authed(
        &bob,
        Method::PATCH,
        "/api/settings",
        Some(json!({"share_receipts": false})),
    )
    .await;
    tab1.send(json!({"type": "read", "room_id": room, "seq": 3}))
        .await;
    assert_eq!(tab2.recv("read_state").await["last_read_seq"], 3);
    a.assert_no("receipts").await;
}

#[tokio::test]
async fn a_read_frame_for_a_room_you_are_not_in_is_refused() {
    let app = spawn_app().await;
    let alice = app.signup_ok(&bot(), "alice").await;
    let eve = app.signup_ok(&bot(), "eve").await;
    let room = app.create_room(&alice, "general", "private").await;
    app.post_message(&alice, room, "a1", "secret").await;
    let mut e = app.ws(&eve).await;
    e.send(json!({"type": "read", "room_id": room, "seq": 1}))
        .await;
    assert_eq!(e.recv("error").await["code"], "not_found");
}
