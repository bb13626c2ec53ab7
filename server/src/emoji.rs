//! `GET /emoji.json`: the emoji list for the picker and `:shortcode:` completion, from the
//! `emojis` crate (Unicode CLDR names and groups, GitHub shortcodes). Serialized once; served
//! with a day of caching, and only fetched by the client when the user first reaches for emoji,
//! so it never weighs on the initial download.

use std::sync::LazyLock;

use app::api::EmojiEntry;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

fn group_name(g: emojis::Group) -> &'static str {
    use emojis::Group::*;
    match g {
        SmileysAndEmotion => "Smileys & Emotion",
        PeopleAndBody => "People & Body",
        AnimalsAndNature => "Animals & Nature",
        FoodAndDrink => "Food & Drink",
        TravelAndPlaces => "Travel & Places",
        Activities => "Activities",
        Objects => "Objects",
        Symbols => "Symbols",
        Flags => "Flags",
    }
}

static EMOJI_JSON: LazyLock<String> = LazyLock::new(|| {
    let list: Vec<EmojiEntry> = emojis::iter()
        .map(|e| EmojiEntry {
            e: e.as_str().to_owned(),
            n: e.name().to_owned(),
            s: e.shortcodes().map(str::to_owned).collect(),
            g: group_name(e.group()).to_owned(),
        })
        .collect();
    serde_json::to_string(&list).unwrap_or_else(|_| "[]".into())
});

pub async fn emoji_json() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            ),
        ],
        EMOJI_JSON.as_str(),
    )
        .into_response()
}
