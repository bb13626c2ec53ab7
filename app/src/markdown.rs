//! Message formatting: a Markdown subset parsed by pulldown-cmark into a small tree of
//! [`Node`]s, which the client renders as DOM nodes (never as an HTML string).
//!
//! The server parses (feature `ssr`): each [`crate::api::Message`] it sends carries its body's
//! nodes in `formatted`, or nothing when the body is plain text ([`format`]). The client has no
//! Markdown parser; it renders the server's nodes, or the plain body as [`plain`] lays it out.
//! One parser means one rendering everywhere, and the parser is not in the client's download
//! (it was about 56 KB of it, brotli).
//!
//! Safety is by construction: there is no node for raw HTML (it becomes text), link targets are
//! kept only for `http:`, `https:` and `mailto:` (anything else becomes plain text; the client
//! checks again), and images become links (no remote image is loaded just by viewing a
//! message). The subset: bold, italic, strikethrough, inline code, code blocks, links (also
//! bare `http(s)://` URLs), block quotes, lists; headings render as bold paragraphs. Single
//! newlines are line breaks, as chat users expect. `@username` outside code is a
//! [`Node::Mention`].

use std::borrow::Cow;

#[cfg(any(feature = "ssr", test))]
use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag};
use serde::{Deserialize, Serialize};

/// One formatting node. On the wire (serde's external tagging, short tags): `{"t":"text"}`,
/// `"br"`, `{"p":[...]}`, `{"b":[...]}`, `{"i":[...]}`, `{"s":[...]}`, `{"code":"x"}`,
/// `{"pre":"x"}`, `{"quote":[...]}`, `{"list":{"ordered":false,"items":[[...]]}}`,
/// `{"a":{"href":"https://...","children":[...]}}`, `{"at":"username"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Node {
    #[serde(rename = "t")]
    Text(String),
    #[serde(rename = "br")]
    LineBreak,
    #[serde(rename = "p")]
    Paragraph(Vec<Node>),
    #[serde(rename = "b")]
    Strong(Vec<Node>),
    #[serde(rename = "i")]
    Emphasis(Vec<Node>),
    #[serde(rename = "s")]
    Strikethrough(Vec<Node>),
    #[serde(rename = "code")]
    Code(String),
    #[serde(rename = "pre")]
    CodeBlock(String),
    #[serde(rename = "quote")]
    Quote(Vec<Node>),
    #[serde(rename = "list")]
    List {
        ordered: bool,
        items: Vec<Vec<Node>>,
    },
    /// A link to a safe URL (http, https, mailto only).
    #[serde(rename = "a")]
    Link { href: String, children: Vec<Node> },
    /// `@username` (lower-cased, without the `@`).
    #[serde(rename = "at")]
    Mention(String),
}

/// How a body without formatting is shown: one paragraph, its lines separated by line breaks
/// (nothing for an empty body). The server sends no nodes for a body whose parse is exactly
/// this.
pub fn plain(body: &str) -> Vec<Node> {
    if body.is_empty() {
        return Vec::new();
    }
    let mut children = Vec::new();
    for (i, line) in body.split('\n').enumerate() {
        if i > 0 {
            children.push(Node::LineBreak);
        }
        if !line.is_empty() {
            children.push(Node::Text(line.to_owned()));
        }
    }
    vec![Node::Paragraph(children)]
}

/// The nodes to show for a message: the server's, or the plain body's.
pub fn nodes<'a>(body: &str, formatted: Option<&'a [Node]>) -> Cow<'a, [Node]> {
    formatted.map_or_else(|| Cow::Owned(plain(body)), Cow::Borrowed)
}

/// The usernames some nodes mention.
pub fn mentions_in(nodes: &[Node]) -> Vec<String> {
    fn walk(nodes: &[Node], out: &mut Vec<String>) {
        for n in nodes {
            match n {
                Node::Mention(name) => out.push(name.clone()),
                Node::Paragraph(c)
                | Node::Strong(c)
                | Node::Emphasis(c)
                | Node::Strikethrough(c)
                | Node::Quote(c)
                | Node::Link { children: c, .. } => walk(c, out),
                Node::List { items, .. } => items.iter().for_each(|i| walk(i, out)),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(nodes, &mut out);
    out
}

/// The start of a message's text as a reply's quote shows it: its plain text, trimmed, up to
/// 160 characters.
pub fn excerpt(nodes: &[Node]) -> String {
    plain_text(nodes).trim().chars().take(160).collect()
}

/// Whether a link target may be followed: only web and mail links.
pub fn is_safe_href(href: &str) -> bool {
    let lower = href.trim().to_ascii_lowercase();
    (lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("mailto:"))
        && !href.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// What the server sends as a message's `formatted`: its nodes, or `None` when the body is
/// plain text (its parse is exactly [`plain`]), which then needs nothing beside `body`.
#[cfg(any(feature = "ssr", test))]
pub fn format(body: &str) -> Option<Vec<Node>> {
    formatted(body, parse(body))
}

/// [`format`] with `body`'s nodes already parsed.
#[cfg(any(feature = "ssr", test))]
pub fn formatted(body: &str, nodes: Vec<Node>) -> Option<Vec<Node>> {
    (nodes != plain(body)).then_some(nodes)
}

/// Most formatting nodes nested in one another. Deeper structure (`> > > ...`, `- - - ...`: a
/// 4,000-character body can nest about 2,000 deep) keeps its text but not its nesting. Every
/// decoder has a depth limit (serde_json's is 128, and a node costs up to 4 levels of JSON), and
/// the client renders recursively: without this cap one message could make the frames that
/// carry it undecodable for every member of its room.
pub const MAX_DEPTH: usize = 16;

/// Parses a message body into nodes, at most [`MAX_DEPTH`] deep.
#[cfg(any(feature = "ssr", test))]
pub fn parse(body: &str) -> Vec<Node> {
    let options = Options::ENABLE_STRIKETHROUGH;
    let mut stack: Vec<(Frame, Vec<Node>)> = vec![(Frame::Root, Vec::new())];
    for event in Parser::new_ext(body, options) {
        match event {
            Event::Start(tag) => {
                // The root is not a node: `stack.len() - 1` containers are open.
                let frame = if stack.len() > MAX_DEPTH {
                    Frame::Other
                } else {
                    Frame::from(tag)
                };
                stack.push((frame, Vec::new()));
            }
            Event::End(_) => {
                // Stray ends (none in practice: pulldown-cmark balances them) are ignored.
                if stack.len() < 2 {
                    continue;
                }
                let Some((frame, children)) = stack.pop() else {
                    break;
                };
                let Some((parent_frame, parent)) = stack.last_mut() else {
                    break;
                };
                match (frame, parent_frame) {
                    // An item belongs to its list.
                    (Frame::Item, Frame::List { items, .. }) => items.push(children),
                    (frame, _) => match frame.close(children) {
                        Closed::One(n) => add(parent, n),
                        Closed::Many(ns) => ns.into_iter().for_each(|n| add(parent, n)),
                    },
                }
            }
            Event::Text(text) => {
                let in_code_block = matches!(stack.last(), Some((Frame::CodeBlock, _)));
                if let Some((_, children)) = stack.last_mut() {
                    if in_code_block {
                        add(children, Node::Text(text.into_string()));
                    } else {
                        linkify(&text, children);
                    }
                }
            }
            Event::Code(code) => push(&mut stack, Node::Code(code.into_string())),
            // Raw HTML is shown as the text it is.
            Event::Html(html) | Event::InlineHtml(html) => {
                push(&mut stack, Node::Text(html.into_string()))
            }
            Event::SoftBreak | Event::HardBreak => push(&mut stack, Node::LineBreak),
            Event::Rule => push(&mut stack, Node::Text("———".into())),
            Event::TaskListMarker(done) => push(
                &mut stack,
                Node::Text(if done { "☑ " } else { "☐ " }.into()),
            ),
            _ => {}
        }
    }
    stack
        .into_iter()
        .next()
        .map(|(_, nodes)| nodes)
        .unwrap_or_default()
}

#[cfg(any(feature = "ssr", test))]
fn push(stack: &mut [(Frame, Vec<Node>)], node: Node) {
    if let Some((_, children)) = stack.last_mut() {
        add(children, node);
    }
}

/// Appends a node; text right after text joins it (pulldown-cmark splits text at characters
/// that might have been syntax, and one node per run is smaller and compares as [`plain`]).
#[cfg(any(feature = "ssr", test))]
fn add(children: &mut Vec<Node>, node: Node) {
    if let (Node::Text(more), Some(Node::Text(text))) = (&node, children.last_mut()) {
        text.push_str(more);
    } else {
        children.push(node);
    }
}

/// Turns bare `http(s)://` URLs in plain text into links.
#[cfg(any(feature = "ssr", test))]
fn linkify(text: &str, out: &mut Vec<Node>) {
    let mut rest = text;
    while let Some(start) = find_url(rest) {
        let (before, from) = rest.split_at(start);
        let end = from
            .find(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '"')
            .unwrap_or(from.len());
        // Trailing punctuation usually ends the sentence, not the URL.
        let url = from[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '\'']);
        if !before.is_empty() {
            mentionify(before, out);
        }
        out.push(Node::Link {
            href: url.to_owned(),
            children: vec![Node::Text(url.to_owned())],
        });
        rest = &from[url.len()..];
    }
    if !rest.is_empty() {
        mentionify(rest, out);
    }
}

/// Splits `@username` mentions out of plain text. A mention starts at the beginning or after a
/// character that cannot be in a username (so `a@b.org` is not one) and is 3-32 characters
/// of `[a-z0-9_.-]` (any case), without a trailing `.`.
#[cfg(any(feature = "ssr", test))]
fn mentionify(text: &str, out: &mut Vec<Node>) {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
    let mut plain_from = 0;
    let mut iter = text.char_indices().peekable();
    let mut prev: Option<char> = None;
    while let Some((i, c)) = iter.next() {
        if c == '@' && !prev.is_some_and(allowed) {
            let name: String = text[i + 1..].chars().take_while(|c| allowed(*c)).collect();
            let name = name.trim_end_matches('.');
            let len = name.chars().count();
            if (3..=32).contains(&len) {
                if plain_from < i {
                    add(out, Node::Text(text[plain_from..i].to_owned()));
                }
                out.push(Node::Mention(name.to_ascii_lowercase()));
                plain_from = i + 1 + name.len();
                while iter.peek().is_some_and(|(j, _)| *j < plain_from) {
                    iter.next();
                }
                prev = name.chars().last();
                continue;
            }
        }
        prev = Some(c);
    }
    if plain_from < text.len() {
        add(out, Node::Text(text[plain_from..].to_owned()));
    }
}

/// The usernames a body mentions.
#[cfg(any(feature = "ssr", test))]
pub fn mentions(body: &str) -> Vec<String> {
    mentions_in(&parse(body))
}

#[cfg(any(feature = "ssr", test))]
fn find_url(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    [lower.find("https://"), lower.find("http://")]
        .into_iter()
        .flatten()
        .filter(|&i| {
            // A URL needs something after the scheme.
            let scheme = if lower[i..].starts_with("https") {
                8
            } else {
                7
            };
            text[i + scheme..]
                .chars()
                .next()
                .is_some_and(|c| !c.is_whitespace())
        })
        .min()
}

#[cfg(any(feature = "ssr", test))]
enum Frame {
    Root,
    Paragraph,
    Heading,
    Strong,
    Emphasis,
    Strikethrough,
    CodeBlock,
    Quote,
    List {
        ordered: bool,
        items: Vec<Vec<Node>>,
    },
    Item,
    Link(Option<String>),
    Other,
}

#[cfg(any(feature = "ssr", test))]
enum Closed {
    One(Node),
    Many(Vec<Node>),
}

#[cfg(any(feature = "ssr", test))]
impl From<Tag<'_>> for Frame {
    fn from(tag: Tag<'_>) -> Self {
        match tag {
            Tag::Paragraph => Frame::Paragraph,
            Tag::Heading { .. } => Frame::Heading,
            Tag::Strong => Frame::Strong,
            Tag::Emphasis => Frame::Emphasis,
            Tag::Strikethrough => Frame::Strikethrough,
            Tag::CodeBlock(CodeBlockKind::Fenced(_) | CodeBlockKind::Indented) => Frame::CodeBlock,
            Tag::BlockQuote(_) => Frame::Quote,
            Tag::List(start) => Frame::List {
                ordered: start.is_some(),
                items: Vec::new(),
            },
            Tag::Item => Frame::Item,
            Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. } => {
                Frame::Link(is_safe_href(&dest_url).then(|| dest_url.trim().to_owned()))
            }
            _ => Frame::Other,
        }
    }
}

#[cfg(any(feature = "ssr", test))]
impl Frame {
    fn close(self, children: Vec<Node>) -> Closed {
        match self {
            Frame::Root | Frame::Item => Closed::Many(children),
            Frame::Paragraph => Closed::One(Node::Paragraph(children)),
            Frame::Heading => Closed::One(Node::Paragraph(vec![Node::Strong(children)])),
            Frame::Strong => Closed::One(Node::Strong(children)),
            Frame::Emphasis => Closed::One(Node::Emphasis(children)),
            Frame::Strikethrough => Closed::One(Node::Strikethrough(children)),
            Frame::CodeBlock => Closed::One(Node::CodeBlock(
                children
                    .into_iter()
                    .filter_map(|n| match n {
                        Node::Text(t) => Some(t),
                        _ => None,
                    })
                    .collect(),
            )),
            Frame::Quote => Closed::One(Node::Quote(children)),
            Frame::List { ordered, items } => Closed::One(Node::List { ordered, items }),
            // A link inside a link cannot be; an unsafe target keeps only its text.
            Frame::Link(Some(href)) => Closed::One(Node::Link {
                href,
                children: children
                    .into_iter()
                    .flat_map(|n| match n {
                        Node::Link { children, .. } => children,
                        other => vec![other],
                    })
                    .collect(),
            }),
            Frame::Link(None) | Frame::Other => Closed::Many(children),
        }
    }
}

/// All the text of some nodes (for tests and plain-text previews).
pub fn plain_text(nodes: &[Node]) -> String {
    let mut out = String::new();
    for n in nodes {
        match n {
            Node::Text(t) | Node::Code(t) | Node::CodeBlock(t) => out.push_str(t),
            Node::Mention(name) => {
                out.push('@');
                out.push_str(name);
            }
            Node::LineBreak => out.push('\n'),
            Node::Paragraph(c)
            | Node::Strong(c)
            | Node::Emphasis(c)
            | Node::Strikethrough(c)
            | Node::Quote(c)
            | Node::Link { children: c, .. } => out.push_str(&plain_text(c)),
            Node::List { items, .. } => {
                for item in items {
                    out.push_str(&plain_text(item));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(nodes: Vec<Node>) -> Vec<Node> {
        vec![Node::Paragraph(nodes)]
    }

    fn t(s: &str) -> Node {
        Node::Text(s.into())
    }

    #[test]
    fn the_subset_is_recognised() {
        assert_eq!(
            parse("**b** *i* ~~s~~ `c`"),
            p(vec![
                Node::Strong(vec![t("b")]),
                t(" "),
                Node::Emphasis(vec![t("i")]),
                t(" "),
                Node::Strikethrough(vec![t("s")]),
                t(" "),
                Node::Code("c".into()),
            ])
        );
        assert_eq!(
            parse("```\nlet x = 1;\n```"),
            vec![Node::CodeBlock("let x = 1;\n".into())]
        );
        assert_eq!(parse("> quoted"), vec![Node::Quote(p(vec![t("quoted")]))]);
        assert_eq!(
            parse("- one\n- two"),
            vec![Node::List {
                ordered: false,
                items: vec![vec![t("one")], vec![t("two")]]
            }]
        );
        assert_eq!(
            parse("1. first"),
            vec![Node::List {
                ordered: true,
                items: vec![vec![t("first")]]
            }]
        );
    }

    #[test]
    fn single_newlines_are_line_breaks() {
        assert_eq!(parse("a\nb"), p(vec![t("a"), Node::LineBreak, t("b")]));
    }

    #[test]
    fn links_keep_only_web_and_mail_targets() {
        assert_eq!(
            parse("[site](https://example.org)"),
            p(vec![Node::Link {
                href: "https://example.org".into(),
                children: vec![t("site")]
            }])
        );
        assert!(
            matches!(&parse("[m](mailto:a@b.c)")[0], Node::Paragraph(c) if matches!(c[0], Node::Link { .. }))
        );
        for bad in [
            "[x](javascript:alert(1))",
            "[x](JaVaScRiPt:alert(1))",
            "[x](data:text/html,<script>alert(1)</script>)",
            "[x](vbscript:msgbox)",
            "[x](//evil.example)",
            "[x](/relative)",
        ] {
            let nodes = parse(bad);
            assert!(!format!("{nodes:?}").contains("Link"), "{bad}: {nodes:?}");
            assert_eq!(plain_text(&nodes), "x");
        }
    }

    #[test]
    fn bare_urls_become_links_without_trailing_punctuation() {
        assert_eq!(
            parse("see https://example.org/a?b=1."),
            p(vec![
                t("see "),
                Node::Link {
                    href: "https://example.org/a?b=1".into(),
                    children: vec![t("https://example.org/a?b=1")]
                },
                t("."),
            ])
        );
        assert_eq!(parse("http:// nothing"), p(vec![t("http:// nothing")]));
    }

    #[test]
    fn mentions_are_found_outside_code_and_emails() {
        assert_eq!(
            parse("hi @Alice_1, see @bob."),
            p(vec![
                t("hi "),
                Node::Mention("alice_1".into()),
                t(", see "),
                Node::Mention("bob".into()),
                t("."),
            ])
        );
        assert_eq!(
            mentions("mail a@b.org or `@code` or @x"),
            Vec::<String>::new()
        );
        assert_eq!(mentions("**@carol** and @dave-2"), ["carol", "dave-2"]);
        assert_eq!(plain_text(&parse("ping @Eve")), "ping @eve");
    }

    #[test]
    fn raw_html_and_images_are_inert() {
        let corpus = [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<iframe src=https://evil.example></iframe>",
            "![x](https://evil.example/track.png)",
            "<svg onload=alert(1)>",
            "[<b>x</b>](javascript:alert(1))",
        ];
        for payload in corpus {
            let nodes = parse(payload);
            let debug = format!("{nodes:?}");
            // No node can carry markup; the only attribute we ever set is a checked href.
            for href in debug.split("href: \"").skip(1) {
                assert!(
                    href.starts_with("http") || href.starts_with("mailto"),
                    "{payload}"
                );
            }
            assert!(
                !plain_text(&nodes).is_empty() || payload.starts_with('!'),
                "{payload}"
            );
        }
        // An image becomes a plain link to its target: nothing is loaded.
        assert!(matches!(&parse("![x](https://e.org/p.png)")[0],
            Node::Paragraph(c) if matches!(&c[0], Node::Link { href, .. } if href == "https://e.org/p.png")));
    }

    #[test]
    fn plain_bodies_need_no_nodes_and_show_as_the_server_would_parse_them() {
        for body in [
            "hello",
            "a\nb",
            "two\nlines\n\nnot one paragraph",
            "Hello! How are you? 3 + 4 = 7, isn't it; (yes) [maybe]",
            "",
            "no trailing break  \nhere",
            "e-mail me at a@b.org",
            "1. not a list\n",
            "  indented",
        ] {
            match format(body) {
                // Sent without nodes: the client's layout must be exactly the parse.
                None => assert_eq!(parse(body), plain(body), "{body:?}"),
                Some(nodes) => assert_ne!(nodes, plain(body), "{body:?}"),
            }
        }
        assert_eq!(format("hello"), None);
        assert_eq!(format("a\nb"), None);
        assert_eq!(format(""), None);
        assert_eq!(format("Hello! How are you? 3 + 4 = 7"), None);
        assert_eq!(plain("a\nb"), p(vec![t("a"), Node::LineBreak, t("b")]));
        // Anything formatted, linked or mentioning someone carries its nodes.
        for body in [
            "**b**",
            "see https://e.org",
            "hi @bob",
            "a\n\nb",
            "> q",
            "`c`",
        ] {
            assert!(format(body).is_some(), "{body:?}");
        }
    }

    #[test]
    fn nodes_travel_with_short_tags_and_come_back_equal() {
        let nodes = parse("**hi** @bob\n[x](https://e.org) `c`\n\n- one\n\n```\nx\n```");
        let json = serde_json::to_string(&nodes).unwrap();
        assert_eq!(
            json,
            r#"[{"p":[{"b":[{"t":"hi"}]},{"t":" "},{"at":"bob"},"br",{"a":{"href":"https://e.org","children":[{"t":"x"}]}},{"t":" "},{"code":"c"}]},{"list":{"ordered":false,"items":[[{"t":"one"}]]}},{"pre":"x\n"}]"#
        );
        assert_eq!(serde_json::from_str::<Vec<Node>>(&json).unwrap(), nodes);
    }

    #[test]
    fn excerpts_are_plain_text_and_mentions_come_from_the_nodes() {
        let nodes = parse("**Look** at `this`, @Ann");
        assert_eq!(excerpt(&nodes), "Look at this, @ann");
        assert_eq!(mentions_in(&nodes), ["ann"]);
        assert_eq!(excerpt(&plain(&"x".repeat(500))).chars().count(), 160);
        assert_eq!(nodes_for_test("plain"), plain("plain"));
    }

    fn nodes_for_test(body: &str) -> Vec<Node> {
        nodes(body, format(body).as_deref()).into_owned()
    }

    /// Containers nested in one another.
    fn depth(nodes: &[Node]) -> usize {
        nodes
            .iter()
            .map(|n| match n {
                Node::Paragraph(c)
                | Node::Strong(c)
                | Node::Emphasis(c)
                | Node::Strikethrough(c)
                | Node::Quote(c)
                | Node::Link { children: c, .. } => 1 + depth(c),
                Node::List { items, .. } => 1 + items.iter().map(|i| depth(i)).max().unwrap_or(0),
                _ => 0,
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn nesting_is_capped_and_deep_messages_still_decode_inside_a_frame() {
        for body in [
            format!("{}deep", "> ".repeat(1990)),
            format!("{}deep", "- ".repeat(1990)),
            format!("{}deep", "1. ".repeat(1300)),
            (0..300)
                .map(|i| format!("{}- level", "  ".repeat(i)))
                .collect::<Vec<_>>()
                .join("\n"),
            format!("{}deep{}", "**~~*".repeat(400), "*~~**".repeat(400)),
        ] {
            let nodes = parse(&body);
            assert!(depth(&nodes) <= MAX_DEPTH, "{} deep", depth(&nodes));
            assert!(
                plain_text(&nodes).contains("deep") || plain_text(&nodes).contains("level"),
                "the text is kept"
            );
            // As the client receives it: in a message, in a `synced` frame.
            let frame = serde_json::json!({"type": "synced", "room_id": 1, "limited": false,
                "last_rev": 0, "messages": [{"id": 1, "room_id": 1, "seq": 1, "sender_id": 1,
                "client_id": "c1", "body": body, "created_at": 1, "formatted": nodes}]});
            let text = serde_json::to_string(&frame).unwrap();
            let back: crate::protocol::ServerFrame = crate::json::decode(&text).unwrap();
            assert!(matches!(back, crate::protocol::ServerFrame::Synced { .. }));
        }
    }
}
