//! Renders a message body's formatting nodes (`crate::markdown`, parsed by the server) as DOM
//! nodes. Text is always a text node; the only attribute taken from a message is a link's
//! `href`, restricted to http(s) and mailto by the server and checked again here.

use leptos::prelude::*;

use crate::markdown::{self, Node};

/// Renders a body: the server's nodes, or the plain text when it sent none. Mentions of `me`
/// (a username) are marked.
pub fn render_body(body: &str, formatted: Option<&[Node]>, me: Option<&str>) -> AnyView {
    render(markdown::nodes(body, formatted).into_owned(), me)
}

fn render(nodes: Vec<Node>, me: Option<&str>) -> AnyView {
    nodes
        .into_iter()
        .map(|n| render_node(n, me))
        .collect_view()
        .into_any()
}

fn render_node(node: Node, me: Option<&str>) -> AnyView {
    let render = |nodes| render(nodes, me);
    match node {
        Node::Mention(name) => {
            let mine = me == Some(name.as_str());
            view! { <span class="mention" class:me=mine>"@" {name}</span> }.into_any()
        }
        Node::Text(text) => text.into_any(),
        Node::LineBreak => view! { <br/> }.into_any(),
        Node::Paragraph(c) => view! { <p>{render(c)}</p> }.into_any(),
        Node::Strong(c) => view! { <strong>{render(c)}</strong> }.into_any(),
        Node::Emphasis(c) => view! { <em>{render(c)}</em> }.into_any(),
        Node::Strikethrough(c) => view! { <s>{render(c)}</s> }.into_any(),
        Node::Code(code) => view! { <code>{code}</code> }.into_any(),
        Node::CodeBlock(code) => view! { <pre><code>{code}</code></pre> }.into_any(),
        Node::Quote(c) => view! { <blockquote>{render(c)}</blockquote> }.into_any(),
        Node::List { ordered, items } => {
            let items = items
                .into_iter()
                .map(|item| view! { <li>{render(item)}</li> })
                .collect_view();
            if ordered {
                view! { <ol>{items}</ol> }.into_any()
            } else {
                view! { <ul>{items}</ul> }.into_any()
            }
        }
        Node::Link { href, children } if markdown::is_safe_href(&href) => view! {
            <a href=href target="_blank" rel="noopener noreferrer nofollow">{render(children)}</a>
        }
        .into_any(),
        Node::Link { children, .. } => render(children),
    }
}
