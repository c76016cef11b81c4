//! Embedding gathers (u32 and i64 ids) and rotary embedding in both pairings: values
//! against f64 references, executed work against the analytic count.

use proptest::prelude::*;
use tally_core::backend::RopeStyle;
use tally_core::{DType, Work};
use tally_tests::{counted, input, make, Rng, Tolerance};

proptest! {
    #![proptest_config(tally_tests::config())]

    #[test]
    fn embedding_gathers_rows(seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let (vocab, dim) = (1 + rng.below(10), 1 + rng.below(6));
        let ids_dims: Vec<usize> = (0..1 + rng.below(2)).map(|_| 1 + rng.below(5)).collect();
        let count: usize = ids_dims.iter().product();
        let ids: Vec<f64> = (0..count).map(|_| rng.below(vocab) as f64).collect();
        for dtype in [DType::F32, DType::BF16] {
            let (table, tv) = input(&mut rng, &[vocab, dim], dtype, -1.0, 1.0);
            for id_dtype in [DType::U32, DType::I64] {
                let id_t = make(&ids, &ids_dims, id_dtype);
                let (y, w) = counted(|| table.embedding(&id_t));
                let mut want_dims = ids_dims.clone();
                want_dims.push(dim);
                assert_eq!(y.dims(), &want_dims[..]);
                // Exact: a gather moves values, it computes nothing.
                let want: Vec<f64> = ids.iter().flat_map(|&i| tv[i as usize * dim..(i as usize + 1) * dim].to_vec()).collect();
                assert_eq!(y.to_f64_vec().unwrap(), want, "{id_dtype} ids into {dtype} table");
                let size = dtype.size_in_bytes();
                let want_w = Work::ZERO.with_bytes(
                    (count * id_dtype.size_in_bytes() + count * dim * size) as u64, // the ids and each gathered row
                    (count * dim * size) as u64,
                );
                assert_eq!(w, want_w);
            }
        }
    }

    #[test]
    fn rope_matches_reference(seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let mut dims: Vec<usize> = (0..rng.below(3)).map(|_| 1 + rng.below(3)).collect();
        let (s, d) = (1 + rng.below(6), 2 * (1 + rng.below(4)));
        dims.extend([s, d]);
        let half = d / 2;
        for dtype in [DType::F32, DType::F16] {
            let (x, xv) = input(&mut rng, &dims, dtype, -2.0, 2.0);
            let angles = rng.values(s * half, -3.0, 3.0);
            let cos = make(&angles.iter().map(|a| a.cos()).collect::<Vec<_>>(), &[s, half], dtype);
            let sin = make(&angles.iter().map(|a| a.sin()).collect::<Vec<_>>(), &[s, half], dtype);
            let (cv, sv) = (cos.to_f64_vec().unwrap(), sin.to_f64_vec().unwrap());
            for style in [RopeStyle::Interleaved, RopeStyle::Half] {
                let (y, w) = counted(|| x.rope(&cos, &sin, style));
                let want = rope_ref(&xv, s, d, &cv, &sv, style);
                Tolerance::of(dtype).summing(2).assert_close(&y.to_f64_vec().unwrap(), &want, &format!("rope {style:?} {dims:?} {dtype}"));
                let pairs = (xv.len() / 2) as u64;
                let size = dtype.size_in_bytes() as u64;
                // Per pair: a·c − b·s and a·s + b·c, 4 muls and 2 adds; x and both tables read.
                let want_w = Work {
                    mul: 4 * pairs,
                    add: 2 * pairs,
                    bytes_read: (xv.len() + 2 * s * half) as u64 * size,
                    bytes_written: xv.len() as u64 * size,
                    ..Work::ZERO
                };
                assert_eq!(w, want_w);
            }
        }
    }
}

/// Rotates each pair of x (…, s, d) by its position's angle: interleaved pairs are
/// (2i, 2i+1), half pairs (i, i + d/2); frequency i at position t uses table[t, i].
fn rope_ref(x: &[f64], s: usize, d: usize, cos: &[f64], sin: &[f64], style: RopeStyle) -> Vec<f64> {
    let half = d / 2;
    let mut out = vec![0.0; x.len()];
    for (row, (o, xr)) in out.chunks_mut(d).zip(x.chunks(d)).enumerate() {
        let t = row % s;
        for i in 0..half {
            let (ia, ib) = match style {
                RopeStyle::Interleaved => (2 * i, 2 * i + 1),
                RopeStyle::Half => (i, i + half),
            };
            let (c, sn) = (cos[t * half + i], sin[t * half + i]);
            o[ia] = xr[ia] * c - xr[ib] * sn;
            o[ib] = xr[ia] * sn + xr[ib] * c;
        }
    }
    out
}

#[test]
fn embedding_counts_pinned() {
    let table = make(
        &(0..20).map(f64::from).collect::<Vec<_>>(),
        &[5, 4],
        DType::F32,
    );
    let ids = make(&[4.0, 0.0, 4.0, 1.0, 2.0, 3.0], &[2, 3], DType::U32);
    let (y, w) = counted(|| table.embedding(&ids));
    assert_eq!(y.dims(), &[2, 3, 4]);
    assert_eq!(
        &y.to_f64_vec().unwrap()[..8],
        &[16.0, 17.0, 18.0, 19.0, 0.0, 1.0, 2.0, 3.0]
    );
    assert_eq!(w.fpo(), 0);
    assert_eq!(w.bytes_read, 6 * 4 + 6 * 4 * 4); // 6 u32 ids + 6 gathered rows of 4 f32
    assert_eq!(w.bytes_written, 6 * 4 * 4);

    let ids = make(&[4.0, 0.0, 4.0, 1.0, 2.0, 3.0], &[6], DType::I64);
    let (_, w) = counted(|| table.embedding(&ids));
    assert_eq!(w.bytes_read, 6 * 8 + 6 * 4 * 4); // i64 ids are 8 bytes
}

#[test]
fn rope_counts_pinned() {
    // x (2, 3, 8): 48 elements, 24 pairs; tables (3, 4).
    let x = make(&[1.0; 48], &[2, 3, 8], DType::F32);
    let cos = make(&[1.0; 12], &[3, 4], DType::F32);
    let sin = make(&[0.0; 12], &[3, 4], DType::F32);
    for style in [RopeStyle::Interleaved, RopeStyle::Half] {
        let (y, w) = counted(|| x.rope(&cos, &sin, style));
        assert_eq!(y.to_f64_vec().unwrap(), vec![1.0; 48]); // angle 0 is the identity
        assert_eq!(w.mul, 4 * 24);
        assert_eq!(w.add, 2 * 24);
        assert_eq!(w.bytes_read, (48 + 2 * 12) * 4); // x + cos + sin
        assert_eq!(w.bytes_written, 48 * 4);
    }
}

#[test]
fn rope_rotates_a_known_pair() {
    // One position, d = 4, angle π/2 on frequency 0 and 0 on frequency 1.
    let x = make(&[1.0, 2.0, 3.0, 4.0], &[1, 4], DType::F32);
    let cos = make(&[0.0, 1.0], &[1, 2], DType::F32);
    let sin = make(&[1.0, 0.0], &[1, 2], DType::F32);
    // Interleaved: pairs (x0, x1) and (x2, x3); (1, 2) → (−2, 1).
    let y = x.rope(&cos, &sin, RopeStyle::Interleaved).unwrap();
    assert_eq!(y.to_f64_vec().unwrap(), vec![-2.0, 1.0, 3.0, 4.0]);
    // Half: pairs (x0, x2) and (x1, x3); (1, 3) → (−3, 1).
    let y = x.rope(&cos, &sin, RopeStyle::Half).unwrap();
    assert_eq!(y.to_f64_vec().unwrap(), vec![-3.0, 2.0, 1.0, 4.0]);
}

#[test]
fn large_shapes_take_the_parallel_path() {
    let mut rng = Rng::new(99);
    let (s, d) = (128, 64);
    let dims = [2, 8, s, d];
    for dtype in [DType::F32, DType::BF16] {
        let (x, xv) = input(&mut rng, &dims, dtype, -2.0, 2.0);
        let angles = rng.values(s * d / 2, -3.0, 3.0);
        let cos = make(
            &angles.iter().map(|a| a.cos()).collect::<Vec<_>>(),
            &[s, d / 2],
            dtype,
        );
        let sin = make(
            &angles.iter().map(|a| a.sin()).collect::<Vec<_>>(),
            &[s, d / 2],
            dtype,
        );
        let (cv, sv) = (cos.to_f64_vec().unwrap(), sin.to_f64_vec().unwrap());
        for style in [RopeStyle::Interleaved, RopeStyle::Half] {
            let (y, w) = counted(|| x.rope(&cos, &sin, style));
            let want = rope_ref(&xv, s, d, &cv, &sv, style);
            Tolerance::of(dtype).summing(2).assert_close(
                &y.to_f64_vec().unwrap(),
                &want,
                &format!("rope {style:?} large {dtype}"),
            );
            assert_eq!(w.mul, 4 * (xv.len() / 2) as u64);
        }
    }
    let (table, tv) = input(&mut rng, &[1000, 128], DType::F32, -1.0, 1.0);
    let ids: Vec<f64> = (0..600).map(|_| rng.below(1000) as f64).collect();
    let (y, w) = counted(|| table.embedding(&make(&ids, &[600], DType::I64)));
    let want: Vec<f64> = ids
        .iter()
        .flat_map(|&i| tv[i as usize * 128..(i as usize + 1) * 128].to_vec())
        .collect();
    assert_eq!(y.to_f64_vec().unwrap(), want);
    assert_eq!(w.bytes_read, 600 * 8 + 600 * 128 * 4);
}
