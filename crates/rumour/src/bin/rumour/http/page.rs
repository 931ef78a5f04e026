//! The status pages as plain server-rendered HTML: no script, a little CSS.

use std::fmt::Write;

use super::view::{History, HistoryRow, MemberList, RingView};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin:0.5em 0 1.5em}\
th,td{border:1px solid #ccc;padding:0.25em 0.6em;text-align:left;font-size:0.9em}\
th{background:#f0f0f0}td.num{text-align:right;font-variant-numeric:tabular-nums}\
.alive,.ACTIVE{color:#080}.suspect,.LEAVING,.JOINING,.PENDING{color:#b60}\
.dead,.left,.LEFT,.UNHEALTHY{color:#b00}nav a{margin-right:1em}.muted{color:#777}";

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// How long before `now` a wall-clock time (Unix ms) was, as `12.3 s ago`.
fn ago(now: u64, at: u64) -> String {
    format!("{:.1} s ago", now.saturating_sub(at) as f64 / 1000.0)
}

/// Escapes a node name for a query string (the names rumour accepts are plain, but be safe).
pub fn query_value(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// The page frame: title, navigation between pages and between nodes, then `body`.
fn layout(title: &str, page: &str, node: &str, nodes: &[String], body: &str) -> String {
    let mut html = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>{STYLE}</style></head><body><h1>{title}</h1><nav>"
    );
    for (path, name) in [
        ("/memberlist", "members"),
        ("/ring", "ring"),
        ("/metrics", "metrics"),
    ] {
        let _ = write!(
            html,
            "<a href=\"{path}?node={}\">{name}</a>",
            query_value(node)
        );
    }
    if nodes.len() > 1 {
        html.push_str("<span class=\"muted\">node:</span> ");
        for other in nodes {
            let label = if other == node {
                format!("<b>{}</b>", escape(other))
            } else {
                escape(other)
            };
            let _ = write!(
                html,
                "<a href=\"{page}?node={}\">{label}</a>",
                query_value(other)
            );
        }
    }
    html.push_str("</nav>");
    html.push_str(body);
    html.push_str("</body></html>");
    html
}

fn table(html: &mut String, headers: &[&str], rows: impl IntoIterator<Item = String>) {
    html.push_str("<table><tr>");
    for header in headers {
        let _ = write!(html, "<th>{header}</th>");
    }
    html.push_str("</tr>");
    for row in rows {
        html.push_str(&row);
    }
    html.push_str("</table>");
}

/// `/memberlist` as HTML.
pub fn memberlist(view: &MemberList, nodes: &[String]) -> String {
    let mut body = format!(
        "<p>Seen from <b>{}</b> at {} (Unix ms). Health score: <b>{}</b> (0 is healthy). \
         Alive members: <b>{}</b> of {}.</p><h2>Members</h2>",
        escape(&view.node),
        view.now,
        view.health_score,
        view.alive,
        view.members.len()
    );
    let members = view.members.iter().map(|m| {
        format!(
            "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{:.1}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td>{}</td></tr>",
            escape(&m.name),
            escape(&m.addr),
            m.state,
            m.state,
            m.incarnation,
            m.since_secs,
            m.rtt_ms
                .map_or_else(|| "-".to_owned(), |ms| format!("{ms:.2}")),
            m.meta_len,
            escape(&m.meta)
        )
    });
    let headers = [
        "name",
        "address",
        "state",
        "incarnation",
        "in state (s)",
        "rtt (ms)",
        "meta (B)",
        "meta",
    ];
    table(&mut body, &headers, members);
    body.push_str("<h2>KV store</h2>");
    let keys = view.keys.iter().map(|k| {
        format!(
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            escape(&k.key),
            escape(&k.codec),
            k.version,
            if k.deleted { "yes" } else { "" },
            ago(view.now, k.updated),
            k.size
        )
    });
    let headers = [
        "key",
        "codec",
        "version",
        "deleted",
        "last local write",
        "size (B)",
    ];
    table(&mut body, &headers, keys);
    let total: usize = view.keys.iter().map(|k| k.size).sum();
    let _ = write!(body, "<p class=\"muted\">Total size: {total} bytes.</p>");
    history(&mut body, &view.history, view.now);
    layout("rumour: members", "/memberlist", &view.node, nodes, &body)
}

fn history(html: &mut String, history: &History, now: u64) {
    if !history.enabled {
        html.push_str("<p class=\"muted\">Message history is off.</p>");
        return;
    }
    for (title, rows) in [("Received", &history.received), ("Sent", &history.sent)] {
        let _ = write!(html, "<h2>{title} changes</h2>");
        let headers = [
            "id",
            "when",
            "key",
            "codec",
            "size (B)",
            "version after (0 = no change)",
            "changes",
        ];
        table(html, &headers, rows.iter().map(|row| history_row(row, now)));
    }
}

fn history_row(row: &HistoryRow, now: u64) -> String {
    format!(
        "<tr><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td>\
         <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
        row.id,
        ago(now, row.at),
        escape(&row.key),
        escape(&row.codec),
        row.value_len,
        row.version_after,
        escape(&row.changes.join(", "))
    )
}

/// `/ring` as HTML.
pub fn ring(view: &RingView, nodes: &[String]) -> String {
    let mut body = format!(
        "<p>Seen from <b>{}</b> at {} (Unix ms).</p>",
        escape(&view.node),
        view.now
    );
    if !view.present {
        body.push_str("<p>The KV store holds no ring yet.</p>");
        return layout("rumour: ring", "/ring", &view.node, nodes, &body);
    }
    let rows = view.instances.iter().map(|i| {
        let state = if i.healthy {
            i.state.as_str()
        } else {
            "UNHEALTHY"
        };
        let registered = i
            .registered_age_secs
            .map_or_else(String::new, |age| format!("{age:.1}"));
        format!(
            "<tr><td>{}</td><td class=\"{state}\">{state}</td><td>{}</td><td>{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{:.1}%</td><td class=\"num\">{:.1}</td>\
             <td class=\"num\">{registered}</td><td>{}</td></tr>",
            escape(&i.id),
            escape(&i.addr),
            escape(&i.zone),
            i.tokens,
            i.ownership,
            i.heartbeat_age_secs,
            forget_cell(view, &i.id, i.forgettable)
        )
    });
    let headers = [
        "instance",
        "state",
        "address",
        "zone",
        "tokens",
        "ownership",
        "heartbeat (s ago)",
        "registered (s ago)",
        "action",
    ];
    table(&mut body, &headers, rows);
    if view.allow_forget {
        body.push_str(
            "<p class=\"muted\">Forget removes an unhealthy instance from the ring: it becomes \
             a <code>LEFT</code> tombstone on every node. An instance that is still running \
             registers again at its next heartbeat.</p>",
        );
    } else {
        body.push_str(FORGET_DISABLED_HTML);
    }
    layout("rumour: ring", "/ring", &view.node, nodes, &body)
}

/// What the ring page says when Forget is disabled.
const FORGET_DISABLED_HTML: &str = "<p class=\"muted\">Forget is disabled. Start the agent \
     with <code>--http-allow-forget</code> to remove unhealthy instances from the ring from this \
     page (a POST to <code>/ring/forget</code>).</p>";

/// The Forget button of an instance: a form posting to `/ring/forget`, disabled unless
/// allowed; nothing for an instance that is healthy or already `LEFT`.
fn forget_cell(view: &RingView, id: &str, forgettable: bool) -> String {
    if !forgettable {
        return String::new();
    }
    let disabled = if view.allow_forget {
        ""
    } else {
        " disabled title=\"start the agent with --http-allow-forget\""
    };
    format!(
        "<form method=\"post\" action=\"/ring/forget?node={}\">\
         <input type=\"hidden\" name=\"forget\" value=\"{}\">\
         <button type=\"submit\"{disabled}>Forget</button></form>",
        query_value(&view.node),
        escape(id)
    )
}

/// The index page: links to every page of every node.
pub fn index(nodes: &[String]) -> String {
    let mut body = String::from("<p>Status pages:</p><ul>");
    for node in nodes {
        let q = query_value(node);
        let _ = write!(
            body,
            "<li>{}: <a href=\"/memberlist?node={q}\">members</a> \
             <a href=\"/ring?node={q}\">ring</a></li>",
            escape(node)
        );
    }
    body.push_str("</ul><p><a href=\"/metrics\">metrics</a> <a href=\"/ready\">ready</a></p>");
    let first = nodes.first().map_or("", String::as_str);
    layout("rumour", "/", first, &[], &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup() {
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }

    #[test]
    fn ages_count_back_from_now_and_never_go_negative() {
        assert_eq!(ago(10_500, 9_000), "1.5 s ago");
        assert_eq!(ago(1_000, 2_000), "0.0 s ago");
    }

    #[test]
    fn query_values_keep_plain_names_and_encode_the_rest() {
        assert_eq!(query_value("node-1.a_b~"), "node-1.a_b~");
        assert_eq!(query_value("a b&c"), "a%20b%26c");
    }
}
