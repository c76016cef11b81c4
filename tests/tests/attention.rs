//! Scaled-dot-product attention with and without causal and padding masks, and with
//! grouped-query heads: values against an f64 reference, and the executed count held to
//! `cost::attention_over` for the (query, key) pairs the test finds visible itself.

use proptest::prelude::*;
use tally_core::backend::AttentionParams;
use tally_core::cost::{attention_dense, attention_over, AttentionGeometry};
use tally_core::{DType, OpId};
use tally_tests::{input, make, measure_one, Rng, Tolerance};

/// Whether query `i` may see key `j`: causal aligns the queries to the end of the keys
/// (query i sits at key position i + s_k − s_q), and the padding mask hides keys of a batch.
fn visible(
    g: &AttentionGeometry,
    causal: bool,
    mask: Option<&[f64]>,
    b: usize,
    i: usize,
    j: usize,
) -> bool {
    let in_time = !causal || j + g.q_len <= i + g.kv_len;
    let unpadded = mask.is_none_or(|m| m[b * g.kv_len + j] != 0.0);
    in_time && unpadded
}

/// softmax(scale·q·kᵀ over visible keys)·v per (batch, head, query); the kv head of query
/// head h is h / (heads / kv_heads). A query with no visible key gives zeros.
/// Returns the output and the number of visible (query, key) pairs over all heads.
fn attention_ref(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    mask: Option<&[f64]>,
    g: &AttentionGeometry,
    scale: f64,
    causal: bool,
) -> (Vec<f64>, u64) {
    let (sq, sk, d) = (g.q_len, g.kv_len, g.head_dim);
    let group = g.heads / g.kv_heads;
    let mut out = vec![0.0; q.len()];
    let mut pairs = 0u64;
    for b in 0..g.batch {
        for h in 0..g.heads {
            let qb = (b * g.heads + h) * sq * d;
            let kb = (b * g.kv_heads + h / group) * sk * d;
            for i in 0..sq {
                let keys: Vec<usize> = (0..sk)
                    .filter(|&j| visible(g, causal, mask, b, i, j))
                    .collect();
                pairs += keys.len() as u64;
                if keys.is_empty() {
                    continue;
                }
                let scores: Vec<f64> = keys
                    .iter()
                    .map(|&j| {
                        (0..d)
                            .map(|e| q[qb + i * d + e] * k[kb + j * d + e])
                            .sum::<f64>()
                            * scale
                    })
                    .collect();
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let sum: f64 = e.iter().sum();
                for (&j, p) in keys.iter().zip(&e) {
                    for x in 0..d {
                        out[qb + i * d + x] += p / sum * v[kb + j * d + x];
                    }
                }
            }
        }
    }
    (out, pairs)
}

/// One random case. `no_empty_rows` keeps every query's visible set non-empty (s_q ≤ s_k
/// under causal, key 0 never padded), the setting the count identity below is stated for.
fn check_attention(seed: u64, dtype: DType) {
    let mut rng = Rng::new(seed);
    let causal = rng.coin();
    let kv_heads = 1 + rng.below(2);
    // Mostly tiny, sometimes long enough to span several causal blocks of 32 query rows.
    let long = rng.coin();
    let sk = if long {
        33 + rng.below(70)
    } else {
        1 + rng.below(6)
    };
    let g = AttentionGeometry {
        batch: 1 + rng.below(2),
        heads: kv_heads * (1 + rng.below(3)),
        kv_heads,
        q_len: if causal && long {
            sk - rng.below(sk / 2)
        } else if causal {
            1 + rng.below(sk)
        } else {
            1 + rng.below(5)
        },
        kv_len: sk,
        head_dim: if long {
            9 + rng.below(60)
        } else {
            1 + rng.below(8)
        },
    };
    let (q, qv) = input(
        &mut rng,
        &[g.batch, g.heads, g.q_len, g.head_dim],
        dtype,
        -1.0,
        1.0,
    );
    let kv_dims = [g.batch, g.kv_heads, g.kv_len, g.head_dim];
    let (k, kv) = input(&mut rng, &kv_dims, dtype, -1.0, 1.0);
    let (v, vv) = input(&mut rng, &kv_dims, dtype, -1.0, 1.0);
    let mask: Option<Vec<f64>> = rng.coin().then(|| {
        (0..g.batch * sk)
            .map(|i| if i % sk == 0 || rng.coin() { 1.0 } else { 0.0 })
            .collect()
    });
    let mask_t = mask.as_ref().map(|m| make(m, &[g.batch, sk], DType::U32));
    let scale = 1.0 / (g.head_dim as f64).sqrt();
    let p = AttentionParams {
        scale: scale as f32,
        causal,
    };
    let (y, rec) = measure_one(|| q.attention(&k, &v, mask_t.as_ref(), p));
    let what = format!("attention {g:?} causal={causal} mask={mask:?} {dtype}");
    let (want, pairs) = attention_ref(
        &qv,
        &kv,
        &vv,
        mask.as_deref(),
        &g,
        scale as f32 as f64,
        causal,
    );
    Tolerance::of(dtype).summing(g.head_dim + sk).assert_close(
        &y.to_f64_vec().unwrap(),
        &want,
        &what,
    );

    let mask_elems = mask.as_ref().map_or(0, |m| m.len());
    assert_eq!(rec.op, OpId::Attention);
    assert_eq!(
        rec.analytic,
        attention_dense(&g, mask_elems, dtype),
        "{what}: analytic is the dense count"
    );
    assert_eq!(
        rec.work,
        attention_over(&g, pairs, 0, mask_elems, dtype),
        "{what}: executed counts the visible pairs"
    );
    let dense = (g.batch * g.heads * g.q_len * g.kv_len) as u64;
    let skipped = dense - pairs;
    // Lower by exactly the skipped pairs: 2d FMAs, 2 muls (scale, 1/sum), 3 adds, 1 exp each.
    let d = g.head_dim as u64;
    assert_eq!(rec.analytic.fma - rec.work.fma, 2 * d * skipped, "{what}");
    assert_eq!(rec.analytic.mul - rec.work.mul, 2 * skipped, "{what}");
    assert_eq!(rec.analytic.add - rec.work.add, 3 * skipped, "{what}");
    assert_eq!(rec.analytic.special - rec.work.special, skipped, "{what}");
    assert_eq!(
        rec.analytic.bytes(),
        rec.work.bytes(),
        "{what}: every input is still read"
    );
    if !causal && mask.is_none() {
        assert_eq!(
            rec.work, rec.analytic,
            "{what}: unmasked attention is dense"
        );
    }
}

proptest! {
    #![proptest_config(tally_tests::config())]

    #[test]
    fn attention_f32_matches_reference(seed in any::<u64>()) {
        check_attention(seed, DType::F32);
    }

    #[test]
    fn attention_f16_bf16_match_reference(seed in any::<u64>()) {
        check_attention(seed, DType::F16);
        check_attention(seed, DType::BF16);
    }
}

#[test]
fn attention_counts_pinned() {
    // b = 1, h = 2 query heads sharing h_kv = 1, s_q = s_k = 3, d = 4.
    let g = AttentionGeometry {
        batch: 1,
        heads: 2,
        kv_heads: 1,
        q_len: 3,
        kv_len: 3,
        head_dim: 4,
    };
    let q = make(&[0.5; 24], &[1, 2, 3, 4], DType::F32);
    let k = make(&[0.25; 12], &[1, 1, 3, 4], DType::F32);
    let v = make(&[1.0; 12], &[1, 1, 3, 4], DType::F32);

    // Dense: 2 heads · 3 · 3 = 18 pairs.
    let (y, rec) = measure_one(|| {
        q.attention(
            &k,
            &v,
            None,
            AttentionParams {
                scale: 0.5,
                causal: false,
            },
        )
    });
    assert_eq!(y.to_f64_vec().unwrap(), vec![1.0; 24]); // every value row is ones
    let w = rec.work;
    assert_eq!(w, rec.analytic);
    assert_eq!(w.fma, 2 * 18 * 4); // q·k and p·v: d FMAs each per pair
    assert_eq!(w.mul, 2 * 18); // scale and 1/sum per pair
    assert_eq!(w.add, 3 * 18); // softmax max, shift, sum
    assert_eq!(w.special, 18 + 6); // one exp per pair + one reciprocal per query row (2·3 rows)
    assert_eq!(w.bytes_read, (24 + 2 * 12) * 4); // q + k + v, f32
    assert_eq!(w.bytes_written, 24 * 4);

    // Causal: query i sees keys 0..=i, 1 + 2 + 3 = 6 pairs per head, 12 in all.
    let (_, rec) = measure_one(|| {
        q.attention(
            &k,
            &v,
            None,
            AttentionParams {
                scale: 0.5,
                causal: true,
            },
        )
    });
    assert_eq!(rec.analytic, attention_dense(&g, 0, DType::F32));
    assert_eq!(rec.work, attention_over(&g, 12, 0, 0, DType::F32));
    assert_eq!(rec.work.fma, 2 * 12 * 4);
    assert_eq!(rec.analytic.fma - rec.work.fma, 2 * (18 - 12) * 4);

    // Causal with key 1 padded: per head query 0 sees {0}, 1 sees {0}, 2 sees {0, 2}: 4 pairs, 8 in all.
    let mask = make(&[1.0, 0.0, 1.0], &[1, 3], DType::U32);
    let (_, rec) = measure_one(|| {
        q.attention(
            &k,
            &v,
            Some(&mask),
            AttentionParams {
                scale: 0.5,
                causal: true,
            },
        )
    });
    assert_eq!(rec.work, attention_over(&g, 8, 0, 3, DType::F32));
    assert_eq!(rec.work.bytes_read, (24 + 2 * 12) * 4 + 3 * 4); // + the u32 mask
    assert_eq!(rec.analytic.special - rec.work.special, 18 - 8); // the skipped exps
}

#[test]
fn grouped_query_heads_share_their_kv_head() {
    // 4 query heads over 2 kv heads: heads 0, 1 read kv head 0 and heads 2, 3 kv head 1.
    let q = make(&[1.0; 4 * 2], &[1, 4, 1, 2], DType::F32);
    let k = make(&[0.0; 2 * 2], &[1, 2, 1, 2], DType::F32);
    let v = make(&[1.0, 2.0, 3.0, 4.0], &[1, 2, 1, 2], DType::F32);
    let (y, rec) = measure_one(|| {
        q.attention(
            &k,
            &v,
            None,
            AttentionParams {
                scale: 1.0,
                causal: false,
            },
        )
    });
    assert_eq!(
        y.to_f64_vec().unwrap(),
        vec![1.0, 2.0, 1.0, 2.0, 3.0, 4.0, 3.0, 4.0]
    );
    assert_eq!(rec.work, rec.analytic);
    assert_eq!(rec.work.bytes_read, (8 + 2 * 4) * 4); // k and v counted at their kv-head size
}

/// A query row with no visible key (here causal with s_q > s_k: query 0 sits before the
/// first key) runs no softmax: its output is zeros (PyTorch's SDPA gives NaN) and the
/// kernel executes no reciprocal for it, which `attention_over` counts as an empty row.
#[test]
fn query_rows_without_visible_keys() {
    let g = AttentionGeometry {
        batch: 1,
        heads: 1,
        kv_heads: 1,
        q_len: 3,
        kv_len: 2,
        head_dim: 2,
    };
    let q = make(&[1.0; 6], &[1, 1, 3, 2], DType::F32);
    let k = make(&[1.0; 4], &[1, 1, 2, 2], DType::F32);
    let (y, rec) = measure_one(|| {
        q.attention(
            &k,
            &k,
            None,
            AttentionParams {
                scale: 1.0,
                causal: true,
            },
        )
    });
    assert_eq!(y.to_f64_vec().unwrap(), vec![0.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
    // Query 0 sees nothing, query 1 key 0, query 2 keys 0 and 1: 3 pairs, 1 empty row.
    assert_eq!(rec.work, attention_over(&g, 3, 1, 0, DType::F32));
    // Padding every key of a batch empties all of its rows the same way.
    let mask = make(&[0.0, 0.0], &[1, 2], DType::U32);
    let (y, rec) = measure_one(|| {
        q.attention(
            &k,
            &k,
            Some(&mask),
            AttentionParams {
                scale: 1.0,
                causal: false,
            },
        )
    });
    assert_eq!(y.to_f64_vec().unwrap(), vec![0.0; 6]);
    assert_eq!(rec.work.fpo() + rec.work.special, 0);
}

#[test]
fn large_shapes_take_the_parallel_path() {
    let mut rng = Rng::new(99);
    let g = AttentionGeometry {
        batch: 2,
        heads: 8,
        kv_heads: 2,
        q_len: 48,
        kv_len: 64,
        head_dim: 32,
    };
    let (q, qv) = input(&mut rng, &[2, 8, 48, 32], DType::F32, -1.0, 1.0);
    let (k, kv) = input(&mut rng, &[2, 2, 64, 32], DType::F32, -1.0, 1.0);
    let (v, vv) = input(&mut rng, &[2, 2, 64, 32], DType::F32, -1.0, 1.0);
    let mask: Vec<f64> = (0..2 * 64)
        .map(|i| if i % 64 < 60 { 1.0 } else { 0.0 })
        .collect();
    let mask_t = make(&mask, &[2, 64], DType::U32);
    let scale = 1.0 / 32f64.sqrt();
    for (causal, m) in [(false, None), (true, None), (true, Some(&mask_t))] {
        let p = AttentionParams {
            scale: scale as f32,
            causal,
        };
        let (y, rec) = measure_one(|| q.attention(&k, &v, m, p));
        let mv = m.map(|_| &mask[..]);
        let (want, pairs) = attention_ref(&qv, &kv, &vv, mv, &g, scale as f32 as f64, causal);
        Tolerance::F32.summing(32 + 64).assert_close(
            &y.to_f64_vec().unwrap(),
            &want,
            &format!("attention large causal={causal}"),
        );
        let mask_elems = m.map_or(0, |t| t.elem_count());
        assert_eq!(
            rec.work,
            attention_over(&g, pairs, 0, mask_elems, DType::F32)
        );
        assert_eq!(rec.analytic, attention_dense(&g, mask_elems, DType::F32));
    }
}

/// bf16 heads with many queries and every key visible take the AMX products where the
/// host has them (Q·Kᵀ and P·V in tiles, P rounded to bf16); wherever they run, they
/// match the f64 reference within bf16's tolerance and count the dense work. The head
/// size (40) and key count (70) are not multiples of a tile, so padding is exercised.
#[test]
fn bf16_heads_with_many_queries_match_the_reference() {
    let mut rng = Rng::new(7);
    let g = AttentionGeometry {
        batch: 2,
        heads: 4,
        kv_heads: 2,
        q_len: 40,
        kv_len: 70,
        head_dim: 40,
    };
    let q_dims = [g.batch, g.heads, g.q_len, g.head_dim];
    let kv_dims = [g.batch, g.kv_heads, g.kv_len, g.head_dim];
    // Peaked scores and values away from zero, so a wrong weight shows in every output.
    let (q, qv) = input(&mut rng, &q_dims, DType::BF16, -2.0, 2.0);
    let (k, kv) = input(&mut rng, &kv_dims, DType::BF16, -2.0, 2.0);
    let (v, vv) = input(&mut rng, &kv_dims, DType::BF16, 0.0, 1.0);
    // bf16 inputs are exact and scores are summed in f32; what remains is each
    // probability's and each output's rounding to bf16 (2⁻⁹ relative): at most 2·2⁻⁹ of
    // max |v| = 1, within the bf16 tolerance's 1e-2 relative plus 4e-3 absolute.
    let tol = Tolerance {
        rel: 1e-2,
        abs: 4e-3,
    };
    // A mask that hides nothing runs as no mask at all.
    let all = vec![1.0; g.batch * g.kv_len];
    let all_t = make(&all, &[g.batch, g.kv_len], DType::U32);
    let scale = 1.0 / (g.head_dim as f64).sqrt();
    let p = AttentionParams {
        scale: scale as f32,
        causal: false,
    };
    for m in [None, Some(&all_t)] {
        let (y, rec) = measure_one(|| q.attention(&k, &v, m, p));
        let what = format!("bf16 attention {g:?} mask={}", m.is_some());
        let mv = m.map(|_| &all[..]);
        let (want, pairs) = attention_ref(&qv, &kv, &vv, mv, &g, scale as f32 as f64, false);
        assert_eq!(pairs, (g.batch * g.heads * g.q_len * g.kv_len) as u64);
        tol.assert_close(&y.to_f64_vec().unwrap(), &want, &what);
        let mask_elems = m.map_or(0, |t| t.elem_count());
        assert_eq!(
            rec.work,
            attention_dense(&g, mask_elems, DType::BF16),
            "{what}"
        );
    }
}

#[test]
fn attention_of_strided_views() {
    // q, k, v stored (b, s, h, d) as projections produce them, viewed as (b, h, s, d).
    let mut rng = Rng::new(4);
    let g = AttentionGeometry {
        batch: 2,
        heads: 2,
        kv_heads: 1,
        q_len: 3,
        kv_len: 4,
        head_dim: 5,
    };
    let (q, qv) = input(&mut rng, &[2, 3, 2, 5], DType::F32, -1.0, 1.0);
    let (k, kv) = input(&mut rng, &[2, 4, 1, 5], DType::F32, -1.0, 1.0);
    let (v, vv) = input(&mut rng, &[2, 4, 1, 5], DType::F32, -1.0, 1.0);
    let swap = |x: &[f64], s: usize, h: usize, d: usize| -> Vec<f64> {
        let mut out = vec![0.0; x.len()];
        for (f, o) in out.iter_mut().enumerate() {
            let (bi, hi, si, di) = (f / (h * s * d), f / (s * d) % h, f / d % s, f % d);
            *o = x[((bi * s + si) * h + hi) * d + di];
        }
        out
    };
    let p = AttentionParams {
        scale: 0.5,
        causal: true,
    };
    let (y, rec) = measure_one(|| {
        q.transpose(1, 2)?
            .attention(&k.transpose(1, 2)?, &v.transpose(1, 2)?, None, p)
    });
    let (want, pairs) = attention_ref(
        &swap(&qv, 3, 2, 5),
        &swap(&kv, 4, 1, 5),
        &swap(&vv, 4, 1, 5),
        None,
        &g,
        0.5,
        true,
    );
    Tolerance::F32.summing(9).assert_close(
        &y.to_f64_vec().unwrap(),
        &want,
        "attention of transposed views",
    );
    assert_eq!(rec.work, attention_over(&g, pairs, 0, 0, DType::F32));
}
