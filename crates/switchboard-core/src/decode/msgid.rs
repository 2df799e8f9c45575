//! Message ids as they appear in `Message-ID`, `In-Reply-To` and
//! `References`, read leniently: real mail has ids without angle brackets,
//! comments, folded whitespace inside an id, commas between ids and prose
//! around them (`In-Reply-To: Your message of Monday <id@host>`). An id that
//! cannot be made out is left out, never a reason to refuse the mail; an
//! odd one (`<yes>`) is kept and simply resolves to nothing.

/// The ids in one header's raw value, in order, without brackets, with
/// all whitespace inside an id removed (RFC 5322 folding may split one).
///
/// With angle brackets present, each `<...>` is an id and everything outside
/// them (prose, commas) is ignored. Without any, the value is split on
/// whitespace and commas and only tokens with an `@` count, so a sentence is
/// not taken for a list of ids.
pub(crate) fn parse_ids(raw: &str) -> Vec<String> {
    let text = without_comments(raw);
    let mut ids = Vec::new();
    if text.contains('<') {
        let mut rest = text.as_str();
        while let Some(start) = rest.find('<') {
            let after = &rest[start + 1..];
            let Some(end) = after.find('>') else { break };
            push_id(&mut ids, &after[..end]);
            rest = &after[end + 1..];
        }
    } else {
        for token in text.split(|c: char| c.is_whitespace() || c == ',') {
            if token.contains('@') {
                push_id(&mut ids, token);
            }
        }
    }
    ids
}

/// Keeps an id unless it is empty or longer than
/// [`super::bounds::MAX_ID_BYTES`]: such an id can name no stored message
/// (stored ids are within the bound) and would only weigh on the indexes.
/// The length is the one it will be stored with: `nul` writes U+FFFD (3
/// bytes) for each NUL, and an id that only outgrows the bound there would
/// otherwise pass here and then fail the whole email as `too_large`, where
/// an over-long `Message-ID` falls back to the content hash.
fn push_id(ids: &mut Vec<String>, raw: &str) {
    let id: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    let stored_len = id.len() + 2 * id.matches('\0').count();
    if !id.is_empty() && stored_len <= super::bounds::MAX_ID_BYTES {
        ids.push(id);
    }
}

/// `raw` without RFC 5322 comments (parenthesized, nestable, with `\`
/// escapes). Parentheses inside `<...>` are part of the id, not a comment.
fn without_comments(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let (mut depth, mut in_id, mut escaped) = (0usize, false, false);
    for c in raw.chars() {
        if depth > 0 {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            continue;
        }
        match c {
            '(' if !in_id => depth = 1,
            '<' => {
                in_id = true;
                out.push(c);
            }
            '>' => {
                in_id = false;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::parse_ids;

    #[test]
    fn bracketed_ids_come_out_in_order_without_brackets() {
        assert_eq!(parse_ids(" <p1@x> <p2@x>"), ["p1@x", "p2@x"]);
        assert_eq!(parse_ids("<p1@x>,<p2@x>"), ["p1@x", "p2@x"]);
    }

    #[test]
    fn comments_prose_and_folding_are_ignored() {
        assert_eq!(parse_ids("<p1@x> (sent from my phone)"), ["p1@x"]);
        assert_eq!(parse_ids("Your message of Mon, 3 Nov (nested (comment)) <p1@x>"), ["p1@x"]);
        assert_eq!(parse_ids("<r1@x>\r\n (folded) <r2\r\n @x>"), ["r1@x", "r2@x"]);
    }

    #[test]
    fn ids_without_brackets_are_the_tokens_with_an_at_sign() {
        assert_eq!(parse_ids("bare@x.com"), ["bare@x.com"]);
        assert_eq!(parse_ids("r1@x r2@x, r3@x"), ["r1@x", "r2@x", "r3@x"]);
        assert!(parse_ids("your message of Monday").is_empty());
    }

    #[test]
    fn odd_or_broken_ids_never_fail() {
        assert_eq!(parse_ids("<yes>"), ["yes"]);
        assert!(parse_ids("<>").is_empty());
        assert!(parse_ids("<unclosed@x").is_empty());
        assert!(parse_ids("(unclosed comment <a@x>").is_empty());
        assert!(parse_ids("").is_empty());
        assert_eq!(parse_ids("<a(b)@x>"), ["a(b)@x"], "parentheses inside an id belong to it");
    }

    #[test]
    fn an_id_longer_than_its_bound_is_left_out() {
        let at_bound = format!("{}@x", "a".repeat(super::super::bounds::MAX_ID_BYTES - 2));
        let past_bound = format!("b{at_bound}");
        assert_eq!(parse_ids(&format!("<{at_bound}> <{past_bound}> <c@x>")), [at_bound.as_str(), "c@x"]);
    }
}
