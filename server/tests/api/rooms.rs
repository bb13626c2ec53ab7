//! Rooms and DMs over HTTP: roles, visibility, and membership enforced on every read and write.

use reqwest::Method;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn a_created_room_is_listed_with_its_owner_and_public_rooms_can_be_joined() {
    let app = spawn_app().await;
    let alice = app.signup_ok(&bot(), "alice").await;
    let bob = app.signup_ok(&bot(), "bob").await;
    let room = app.create_room(&alice, "general", "public").await;

    let mine: Value = app
        .authed(&alice, Method::GET, "/api/rooms", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine[0]["id"], room);
    assert_eq!(mine[0]["role"], "owner");
    assert_eq!(mine[0]["name"], "general");

    let public: Value = app
        .authed(&bob, Method::GET, "/api/rooms/public", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(public[0]["id"], room);
    assert_eq!(public[0]["joined"], false);

    assert_eq!(app.join(&bob, room).await.status(), StatusCode::OK);
    let members: Value = app
        .authed(
            &bob,
            Method::GET,
            &format!("/api/rooms/{room}/members"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let roles: Vec<(String, String)> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user"]["username"].as_str().unwrap().into(),
                m["role"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            ("alice".into(), "owner".into()),
            ("bob".into(), "member".into())
        ]
    );
}

#[tokio::test]
async fn room_names_and_topics_are_validated() {
    let app = spawn_app().await;
    let alice = app.signup_ok(&bot(), "alice").await;
    for body in [
        json!({"name": "  "}),
        json!({"name": "x".repeat(65)}),
        json!({"name": "ok", "topic": "t".repeat(251)}),
    ] {
        let resp = app
            .authed(&alice, Method::POST, "/api/rooms", Some(body))
            .await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    }
    let unauthenticated = bot()
        .post(app.url("/api/rooms"))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn outsiders_cannot_see_or_touch_a_private_room_even_by_guessing_its_id() {
    let app = spawn_app().await;
    let alice = app.signup_ok(&bot(), "alice").await;
    let mallory = app.signup_ok(&bot(), "mallory").await;
    let room = app.create_room(&alice, "secret", "private").await;
    app.post_message(&alice, room, "m1", "the plan").await;

    let public: Value = app
        .authed(&mallory, Method::GET, "/api/rooms/public", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(public, json!([]));
    for guess in [room, room + 1, 999] {
        let checks = [
            app.join(&mallory, guess).await,
            app.history(&mallory, guess, "").await,
            app.authed(&mallory, Method::GET, &format!("/api/rooms/{guess}"), None)
                .await,
            app.authed(
                &mallory,
                Method::GET,
                &format!("/api/rooms/{guess}/members"),
                None,
            )
            .await,
            app.post_message(&mallory, guess, "x1", "hi").await,
            app.authed(
                &mallory,
                Method::POST,
                &format!("/api/rooms/{guess}/members"),
                Some(json!({"username": "mallory"})),
            )
            .await,
        ];
        for resp in checks {
            assert_eq!(
                error_code(resp, StatusCode::NOT_FOUND).await,
                "not_found",
                "room {guess}"
            );
        }
    }
    // Nothing was stored by the attempts.
    let page: Value = app.history(&alice, room, "").await.json().await.unwrap();
    assert_eq!(seqs(&page["messages"]), [1]);
}

#[tokio::test]
async fn members_invite_others_to_private_rooms() {
    let app = spawn_app().await;
    let alice = app.signup_ok(&bot(), "alice").await;
    let bob = app.signup_ok(&bot(), "bob").await;
    let room = app.create_room(&alice, "secret", "private").await;
    app.post_message(&alice, room, "m1", "welcome").await;
    let mut alice_ws = app.ws(&alice).await;
    let resp = app
        .authed(
            &alice,
            Method::POST,
            &format!("/api/rooms/{room}/members"),
            Some(json!({"username": "bob"})),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    // The answer and the room's other members are told about bob, not anyone else.
    let invited: Value = resp.json().await.unwrap();
    assert_eq!(
        (
            invited["user"]["username"].as_str(),
            invited["role"].as_str()
        ),
        (Some("bob"), Some("member"))
    );
    let joined = alice_ws.recv("member_joined").await;
    assert_eq!(joined["room_id"].as_i64(), Some(room));
    assert_eq!(joined["member"]["user"]["username"], "bob");
    let page: Value = app.history(&bob, room, "").await.json().await.unwrap();
    assert_eq!(page["messages"][0]["body"], "welcome");
    let again = app
        .authed(
            &alice,
            Method::POST,
            &format!("/api/rooms/{room}/members"),
            Some(json!({"username": "bob"})),
        )
        .await;
    assert_eq!(error_code(again, StatusCode::CONFLICT).await, "conflict");
    let nobody = app
        .authed(
            &alice,
            Method::POST,
            &format!("/api/rooms/{room}/members"),
            Some(json!({"username": "nobody"})),
        )
        .await;
    assert_eq!(nobody.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn only_owners_and_admins_rename_set_topics_and_kick() {
    let app = spawn_app().await;
    let alice = app.signup_ok(&bot(), "alice").await;
    let bob = app.signup_ok(&bot(), "bob").await;
    let carol = app.signup_ok(&bot(), "carol").await;
    let room = app.create_room(&alice, "general", "public").await;
    app.join(&bob, room).await;
    app.join(&carol, room).await;
    let carol_id = app.user_id(&carol).await;
    let alice_id = app.user_id(&alice).await;

    let by_member = app
        .authed(
            &bob,
            Method::PATCH,
            &format!("/api/rooms/{room}"),
            Some(json!({"name": "mine"})),
        )
        .await;
    assert_eq!(
        error_code(by_member, StatusCode::FORBIDDEN).await,
        "forbidden"
    );
    let kick_by_member = app
        .authed(
            &bob,
            Method::DELETE,
            &format!("/api/rooms/{room}/members/{carol_id}"),
            None,
        )
        .await;
    assert_eq!(kick_by_member.status(), StatusCode::FORBIDDEN);
    let kick_owner = app
        .authed(
            &bob,
            Method::DELETE,
            &format!("/api/rooms/{room}/members/{alice_id}"),
            None,
        )
        .await;
    assert_eq!(kick_owner.status(), StatusCode::FORBIDDEN);

    let renamed: Value = app
        .authed(
            &alice,
            Method::PATCH,
            &format!("/api/rooms/{room}"),
            Some(json!({"name": "lobby", "topic": "say hi"})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (renamed["name"].as_str(), renamed["topic"].as_str()),
        (Some("lobby"), Some("say hi"))
    );

    let kicked = app
        .authed(
            &alice,
            Method::DELETE,
            &format!("/api/rooms/{room}/members/{carol_id}"),
            None,
        )
        .await;
    assert_eq!(kicked.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.history(&carol, room, "").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post_message(&carol, room, "c1", "still here?")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn leaving_ends_access_and_an_owner_leaving_hands_the_room_on() {
    let app = spawn_app().await;
    let alice = app.signup_ok(&bot(), "alice").await;
    let bob = app.signup_ok(&bot(), "bob").await;
    let room = app.create_room(&alice, "general", "public").await;
    app.join(&bob, room).await;
    let left = app
        .authed(
            &alice,
            Method::POST,
            &format!("/api/rooms/{room}/leave"),
            Some(json!({})),
        )
        .await;
    assert_eq!(left.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.history(&alice, room, "").await.status(),
        StatusCode::NOT_FOUND
    );
    let bobs: Value = app
        .authed(&bob, Method::GET, &format!("/api/rooms/{room}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bobs["role"], "owner");
}

#[tokio::test]
async fn a_dm_is_one_per_pair_and_private_to_the_two() {
    let app = spawn_app().await;
    let alice = app.signup_ok(&bot(), "alice").await;
    let bob = app.signup_ok(&bot(), "bob").await;
    let eve = app.signup_ok(&bot(), "eve").await;
    let first = app
        .authed(
            &alice,
            Method::POST,
            "/api/dms",
            Some(json!({"username": "bob"})),
        )
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["kind"], "dm");
    assert_eq!(first["name"], "bob");
    assert_eq!(first["peer"]["username"], "bob");
    let again: Value = app
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
    let reverse: Value = app
        .authed(
            &bob,
            Method::POST,
            "/api/dms",
            Some(json!({"username": "ALICE"})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(reverse["id"], first["id"]);
    assert_eq!(reverse["name"], "alice");

    let dm = first["id"].as_i64().unwrap();
    app.post_message(&alice, dm, "d1", "psst").await;
    assert_eq!(
        app.history(&eve, dm, "").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.join(&eve, dm).await.status(), StatusCode::NOT_FOUND);
    let to_self = app
        .authed(
            &alice,
            Method::POST,
            "/api/dms",
            Some(json!({"username": "alice"})),
        )
        .await;
    assert_eq!(to_self.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn history_pages_backwards_by_sequence_number_in_pages_of_50() {
    let app = spawn_app().await;
    let alice = app.signup_ok(&bot(), "alice").await;
    let room = app.create_room(&alice, "general", "public").await;
    for i in 1..=120 {
        let resp = app
            .post_message(&alice, room, &format!("m{i}"), &format!("message {i}"))
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    let newest: Value = app.history(&alice, room, "").await.json().await.unwrap();
    assert_eq!(seqs(&newest["messages"]), (71..=120).collect::<Vec<_>>());
    assert_eq!(newest["has_more"], true);
    let older: Value = app
        .history(&alice, room, "?before=71")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seqs(&older["messages"]), (21..=70).collect::<Vec<_>>());
    let oldest: Value = app
        .history(&alice, room, "?before=21")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seqs(&oldest["messages"]), (1..=20).collect::<Vec<_>>());
    assert_eq!(oldest["has_more"], false);
    assert_eq!(oldest["messages"][0]["body"], "message 1");
    let capped: Value = app
        .history(&alice, room, "?limit=1000")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        seqs(&capped["messages"]).len(),
        100,
        "pages are capped at 100"
    );
}

#[tokio::test]
async fn messages_are_1_to_4000_characters() {
    let app = spawn_app().await;
    let alice = app.signup_ok(&bot(), "alice").await;
    let room = app.create_room(&alice, "general", "public").await;
    let longest = "é".repeat(4000);
    assert_eq!(
        app.post_message(&alice, room, "a", &longest).await.status(),
        StatusCode::CREATED
    );
    for bad in [
        "x".repeat(4001),
        String::new(),
        "  \n ".into(),
        "bell\u{7}".into(),
    ] {
        let resp = app.post_message(&alice, room, "b", &bad).await;
        assert_eq!(
            error_code(resp, StatusCode::BAD_REQUEST).await,
            "invalid_message"
        );
    }
    let page: Value = app.history(&alice, room, "").await.json().await.unwrap();
    assert_eq!(seqs(&page["messages"]), [1]);
    assert_eq!(
        page["messages"][0]["body"]
            .as_str()
            .unwrap()
            .chars()
            .count(),
        4000
    );
}

#[tokio::test]
async fn a_retried_post_with_the_same_client_id_is_stored_once() {
    let app = spawn_app().await;
    let alice = app.signup_ok(&bot(), "alice").await;
    let room = app.create_room(&alice, "general", "public").await;
    let first = app.post_message(&alice, room, "retry-me", "once").await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let retry = app.post_message(&alice, room, "retry-me", "once").await;
    assert_eq!(retry.status(), StatusCode::OK);
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry, first);
    let page: Value = app.history(&alice, room, "").await.json().await.unwrap();
    assert_eq!(seqs(&page["messages"]), [1]);
}

#[tokio::test]
async fn users_can_be_found_by_username_prefix() {
    let app = spawn_app().await;
    let alice = app.signup_ok(&bot(), "alice").await;
    app.signup_ok(&bot(), "al_x").await;
    app.signup_ok(&bot(), "alfred").await;
    app.signup_ok(&bot(), "bob").await;
    let found: Value = app
        .authed(&alice, Method::GET, "/api/users?q=al_", None)
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["al_x"], "'_' is literal, not a wildcard");
}

#[tokio::test]
async fn the_owner_makes_admins_and_admins_moderate_members_but_not_each_other() {
    let app = spawn_app().await;
    let alice = app.signup_ok(&bot(), "alice").await;
    let bob = app.signup_ok(&bot(), "bob").await;
    let carol = app.signup_ok(&bot(), "carol").await;
    let dave = app.signup_ok(&bot(), "dave").await;
    let room = app.create_room(&alice, "general", "public").await;
    for t in [&bob, &carol, &dave] {
        app.join(t, room).await;
    }
    let (bob_id, carol_id, dave_id) = (
        app.user_id(&bob).await,
        app.user_id(&carol).await,
        app.user_id(&dave).await,
    );
    let mut bob_ws = app.ws(&bob).await;

    let by_member = app
        .authed(
            &carol,
            Method::PUT,
            &format!("/api/rooms/{room}/members/{bob_id}"),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(by_member.status(), StatusCode::FORBIDDEN);
    let promoted = app
        .authed(
            &alice,
            Method::PUT,
            &format!("/api/rooms/{room}/members/{bob_id}"),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(promoted.status(), StatusCode::OK);
    let promoted: Value = promoted.json().await.unwrap();
    assert_eq!(
        (promoted["user"]["id"].as_i64(), promoted["role"].as_str()),
        (Some(bob_id), Some("admin"))
    );
    let changed = bob_ws.recv("role_changed").await;
    assert_eq!(
        (changed["room_id"].as_i64(), changed["role"].as_str()),
        (Some(room), Some("admin"))
    );
    app.authed(
        &alice,
        Method::PUT,
        &format!("/api/rooms/{room}/members/{carol_id}"),
        Some(json!({"role": "admin"})),
    )
    .await;

    // An admin renames and removes a member, but not another admin.
    let renamed = app
        .authed(
            &bob,
            Method::PATCH,
            &format!("/api/rooms/{room}"),
            Some(json!({"topic": "admins at work"})),
        )
        .await;
    assert_eq!(renamed.status(), StatusCode::OK);
    let kick_admin = app
        .authed(
            &bob,
            Method::DELETE,
            &format!("/api/rooms/{room}/members/{carol_id}"),
            None,
        )
        .await;
    assert_eq!(kick_admin.status(), StatusCode::FORBIDDEN);
    let kick_member = app
        .authed(
            &bob,
            Method::DELETE,
            &format!("/api/rooms/{room}/members/{dave_id}"),
            None,
        )
        .await;
    assert_eq!(kick_member.status(), StatusCode::NO_CONTENT);
    // Nobody can be made owner this way.
    let to_owner = app
        .authed(
            &alice,
            Method::PUT,
            &format!("/api/rooms/{room}/members/{bob_id}"),
            Some(json!({"role": "owner"})),
        )
        .await;
    assert_eq!(to_owner.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn posting_over_http_and_creating_rooms_are_rate_limited_per_user() {
    let app = spawn_app_with(|c| {
        c.limits.http_posts_per_minute = 3;
        c.limits.rooms_per_hour = 2;
    })
    .await;
    let alice = app.signup_ok(&bot(), "alice").await;
    let bob = app.signup_ok(&bot(), "bob").await;
    let room = app.create_room(&alice, "one", "public").await;
    app.create_room(&alice, "two", "public").await;
    let third = app
        .authed(
            &alice,
            Method::POST,
            "/api/rooms",
            Some(json!({"name": "three"})),
        )
        .await;
    assert!(third.headers().contains_key("retry-after"));
    assert_eq!(
        error_code(third, StatusCode::TOO_MANY_REQUESTS).await,
        "too_many_requests"
    );
    app.create_room(&bob, "bobs", "public").await; // others are not affected

    for i in 0..3 {
        assert_eq!(
            app.post_message(&alice, room, &format!("m{i}"), "hi")
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    let fourth = app.post_message(&alice, room, "m4", "hi").await;
    assert_eq!(
        error_code(fourth, StatusCode::TOO_MANY_REQUESTS).await,
        "too_many_requests"
    );
    let page: Value = app.history(&alice, room, "").await.json().await.unwrap();
    assert_eq!(seqs(&page["messages"]), [1, 2, 3]);
}

/// A room's member count, in the member's room list and the public list, follows joins,
/// repeated joins, invitations, kicks and leaves.
#[tokio::test]
async fn member_counts_follow_joins_and_departures() {
    let app = spawn_app().await;
    let alice = app.signup_ok(&bot(), "alice").await;
    let bob = app.signup_ok(&bot(), "bob").await;
    let carol = app.signup_ok(&bot(), "carol").await;
    let room = app.create_room(&alice, "general", "public").await;
    let counts = |token: String| {
        let app = &app;
        async move {
            let mine: Value = app
                .authed(&token, Method::GET, "/api/rooms", None)
                .await
                .json()
                .await
                .unwrap();
            let public: Value = app
                .authed(&token, Method::GET, "/api/rooms/public", None)
                .await
                .json()
                .await
                .unwrap();
            let of = |list: &Value| {
                list.as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["id"] == room)
                    .map(|r| r["member_count"].clone())
            };
            (of(&mine), of(&public))
        }
    };
    assert_eq!(
        counts(alice.clone()).await,
        (Some(json!(1)), Some(json!(1)))
    );
    assert_eq!(app.join(&bob, room).await.status(), StatusCode::OK);
    assert_eq!(app.join(&bob, room).await.status(), StatusCode::OK);
    assert_eq!(counts(bob.clone()).await, (Some(json!(2)), Some(json!(2))));
    let carol_id = app.user_id(&carol).await;
    let invited = app
        .authed(
            &alice,
            Method::POST,
            &format!("/api/rooms/{room}/members"),
            Some(json!({"username": "carol"})),
        )
        .await;
    assert!(invited.status().is_success(), "{}", invited.status());
    assert_eq!(
        counts(carol.clone()).await,
        (Some(json!(3)), Some(json!(3)))
    );
    let kicked = app
        .authed(
            &alice,
            Method::DELETE,
            &format!("/api/rooms/{room}/members/{carol_id}"),
            None,
        )
        .await;
    assert!(kicked.status().is_success(), "{}", kicked.status());
    let left = app
        .authed(
            &bob,
            Method::POST,
            &format!("/api/rooms/{room}/leave"),
            Some(json!({})),
        )
        .await;
    assert_eq!(left.status(), StatusCode::NO_CONTENT);
    assert_eq!(counts(alice).await, (Some(json!(1)), Some(json!(1))));
}
