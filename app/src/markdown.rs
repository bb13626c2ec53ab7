//! Message formatting: a Markdown subset parsed by pulldown-cmark into a small tree of
//! [`Node`]s, which the client renders as DOM nodes (never as an HTML string).
//!
//! Safety is by construction: there is no node for raw HTML (it becomes text), link targets are
//! kept only for `http:`, `https:` and `mailto:` (anything else becomes plain text), and images
//! become links (no remote image is loaded just by viewing a message). The subset: bold,
//! italic, strikethrough, inline code, code blocks, links (also bare `http(s)://` URLs), block
//! quotes, lists; headings render as bold paragraphs. Single newlines are line breaks, as chat
//! users expect. `@username` outside code is a [`Node::Mention`].

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Text(String),
    LineBreak,
    Paragraph(Vec<Node>),
    Strong(Vec<Node>),
    Emphasis(Vec<Node>),
    Strikethrough(Vec<Node>),
    Code(String),
    CodeBlock(String),
    Quote(Vec<Node>),
    List {
        ordered: bool,
        items: Vec<Vec<Node>>,
    },
    /// A link to a safe URL (http, https, mailto only).
    Link {
        href: String,
        children: Vec<Node>,
    },
    /// `@username` (lower-cased, without the `@`).
    Mention(String),
}

/// Whether a link target may be followed: only web and mail links.
pub fn is_safe_href(href: &str) -> bool {
    let lower = href.trim().to_ascii_lowercase();
    (lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("mailto:"))
        && !href.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// Parses a message body into nodes.
pub fn parse(body: &str) -> Vec<Node> {
    let options = Options::ENABLE_STRIKETHROUGH;
    let mut stack: Vec<(Frame, Vec<Node>)> = vec![(Frame::Root, Vec::new())];
    for event in Parser::new_ext(body, options) {
        match event {
            Event::Start(tag) => stack.push((Frame::from(tag), Vec::new())),
            Event::End(end) => {
                if matches!(end, TagEnd::Item) || stack.len() < 2 {
                    // Items are closed by their list below; stray ends are ignored.
                    if let TagEnd::Item = end
                        && let Some((Frame::Item, children)) = stack.pop()
                        && let Some((Frame::List { items, .. }, _)) = stack.last_mut()
                    {
                        items.push(children);
                    }
                    continue;
                }
                let Some((frame, children)) = stack.pop() else {
                    break;
                };
                if let Some(node) = frame.close(children)
                    && let Some((_, parent)) = stack.last_mut()
                {
                    match node {
                        Closed::One(n) => parent.push(n),
                        Closed::Many(ns) => parent.extend(ns),
                    }
                }
            }
            Event::Text(text) => {
                let in_code_block = matches!(stack.last(), Some((Frame::CodeBlock, _)));
                if let Some((_, children)) = stack.last_mut() {
                    if in_code_block {
                        children.push(Node::Text(text.into_string()));
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

fn push(stack: &mut [(Frame, Vec<Node>)], node: Node) {
    if let Some((_, children)) = stack.last_mut() {
        children.push(node);
    }
}

/// Turns bare `http(s)://` URLs in plain text into links.
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
                    out.push(Node::Text(text[plain_from..i].to_owned()));
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
        out.push(Node::Text(text[plain_from..].to_owned()));
    }
}

/// The usernames a body mentions.
pub fn mentions(body: &str) -> Vec<String> {
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
    walk(&parse(body), &mut out);
    out
}

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

enum Closed {
    One(Node),
    Many(Vec<Node>),
}

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

impl Frame {
    fn close(self, children: Vec<Node>) -> Option<Closed> {
        Some(match self {
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
        })
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
}
