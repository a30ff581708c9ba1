//! Tokenization of free text (titles, descriptions): lower-cased alphanumeric runs, without stop
//! words and without tokens too short or too long to carry meaning.

/// Tokens shorter than this (in chars) are dropped: single letters are noise.
const MIN_TOKEN_CHARS: usize = 2;
/// Longer tokens are usually hashes, URLs or glued words; dropping them bounds memory on junk input.
const MAX_TOKEN_CHARS: usize = 40;

/// A small English stop list: the words frequent enough to dominate term counts but carrying no topic.
const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "all", "also", "an", "and", "any", "are", "as", "at", "be", "been",
    "but", "by", "can", "could", "did", "do", "does", "for", "from", "had", "has", "have", "he",
    "her", "his", "how", "if", "in", "into", "is", "it", "its", "may", "more", "most", "must",
    "no", "not", "of", "on", "one", "or", "other", "our", "out", "she", "so", "some", "such",
    "than", "that", "the", "their", "them", "then", "there", "these", "they", "this", "those",
    "to", "up", "was", "we", "were", "what", "when", "where", "which", "who", "will", "with",
    "would", "you", "your",
];

fn is_stop_word(token: &str) -> bool {
    STOP_WORDS.binary_search(&token).is_ok()
}

/// Appends the tokens of `text` to `out`, in order, repeats kept (term frequency matters).
pub fn tokenize_into(text: &str, out: &mut Vec<String>) {
    for raw in text.split(|c: char| !c.is_alphanumeric()) {
        let n_chars = raw.chars().count();
        if !(MIN_TOKEN_CHARS..=MAX_TOKEN_CHARS).contains(&n_chars) {
            continue;
        }
        let token = raw.to_lowercase();
        if !is_stop_word(&token) {
            out.push(token);
        }
    }
}

pub fn tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    tokenize_into(text, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_list_is_sorted_for_binary_search() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn splits_lowercases_and_drops_noise() {
        assert_eq!(
            tokenize("The Toy-Story of a BOY, 1995! x"),
            vec!["toy", "story", "boy", "1995"]
        );
        assert_eq!(tokenize("Ünïcode café"), vec!["ünïcode", "café"]);
        assert!(tokenize(&"z".repeat(100)).is_empty());
    }
}
