//! The "did you mean" hint of a missing-tensor error: the stored name closest to the one asked for.

/// A hint naming the stored tensor nearest to `wanted`, if one is near enough.
///
/// First choice: a name equal to `wanted` up to a leading prefix (`model.` + wanted, or
/// wanted minus its first components), the usual cause of a miss. Otherwise the name at
/// the smallest edit distance, if that distance is at most a third of the name's length.
pub(crate) fn near_name<'a>(
    wanted: &str,
    names: impl Iterator<Item = &'a str> + Clone,
) -> Option<String> {
    let prefixed = names
        .clone()
        .filter(|n| ends_with_component(n, wanted) || ends_with_component(wanted, n))
        .min_by_key(|n| (n.len().abs_diff(wanted.len()), *n));
    if let Some(n) = prefixed {
        return Some(format!("did you mean `{n}`? it differs by a prefix"));
    }
    let limit = (wanted.len() / 3).max(2);
    names
        .map(|n| (edit_distance(wanted, n), n))
        .filter(|&(d, _)| d <= limit)
        .min()
        .map(|(_, n)| format!("did you mean `{n}`?"))
}

/// True when `long` ends with `.` + `short`.
fn ends_with_component(long: &str, short: &str) -> bool {
    long.len() > short.len()
        && long.ends_with(short)
        && long.as_bytes()[long.len() - short.len() - 1] == b'.'
}

/// Levenshtein distance over bytes (names are ASCII in practice).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 3] = [
        "model.embed.weight",
        "model.layers.0.attn.q.weight",
        "model.layers.0.attn.k.weight",
    ];

    #[test]
    fn prefix_mismatch_is_found_first() {
        let h = near_name("layers.0.attn.q.weight", NAMES.into_iter()).unwrap();
        assert!(h.contains("`model.layers.0.attn.q.weight`"), "{h}");
    }

    #[test]
    fn typos_are_found_and_strangers_are_not() {
        let h = near_name("model.layers.0.atn.k.weight", NAMES.into_iter()).unwrap();
        assert!(h.contains("`model.layers.0.attn.k.weight`"), "{h}");
        assert_eq!(near_name("lm_head.bias", NAMES.into_iter()), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
