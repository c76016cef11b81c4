//! The buffer pool on its own, in a process of its own (its state is global, and kernels
//! in other tests would take and return buffers concurrently): exact-size reuse, contents
//! kept for overwrite, zeroing on request, sizes never asked for not kept, idle buffers
//! trimmed on a miss, and the byte limit with its eviction order.

use tally_cpu::buffers::{
    clear, empty, filled, for_overwrite, give, set_limit, stats, DEFAULT_LIMIT,
};

#[test]
fn reuses_exact_sizes_within_its_bounds() {
    clear();
    let a: Vec<f32> = filled(1000, 0.0);
    let ptr = a.as_ptr();
    give(a);
    assert_eq!(stats().held_bytes, 4000); // 1000 f32
    let hits = stats().hits;
    // Same dtype and size: the same buffer, its contents kept for overwrite.
    let b: Vec<f32> = for_overwrite(1000, 7.0);
    assert_eq!(b.as_ptr(), ptr);
    assert!(b.iter().all(|&v| v == 0.0), "old contents, not the fill");
    give(b);
    let mut c: Vec<f32> = empty(1000);
    assert_eq!((c.as_ptr(), c.len(), c.capacity()), (ptr, 0, 1000));
    c.resize(1000, 3.0);
    give(c);
    // filled writes every element.
    let d: Vec<f32> = filled(1000, 0.0);
    assert_eq!(d.as_ptr(), ptr);
    assert!(d.iter().all(|&v| v == 0.0));
    assert_eq!(stats().hits, hits + 3);

    // Another dtype or size is a miss; a miss trims idle buffers to a tenth of the bytes
    // handed out: with d (4000) and e (4000) out, d returned and f (3996) asked for, d's
    // idle 4000 bytes exceed (4000 + 3996) / 10 and are freed.
    let e: Vec<u32> = empty(1000);
    give(d);
    assert_eq!(stats().held_bytes, 4000);
    let misses = stats().misses;
    let f: Vec<f32> = empty(999);
    assert_eq!(stats().misses, misses + 1);
    assert_eq!(stats().held_bytes, 0, "idle buffers trimmed on a miss");

    // Types a storage cannot hold, and sizes never asked for, are not kept.
    give(vec![0usize; 1000]);
    give(vec![0f32; 1001]);
    assert_eq!(stats().held_bytes, 0);
    give(e);
    give(f);
    assert_eq!((stats().held_bytes, stats().buffers), (7996, 2));

    // Over the limit, the least recently used sizes go first (e's u32 buffer); a buffer
    // larger than the limit is freed; a limit of 0 turns pooling off.
    set_limit(6000);
    assert_eq!((stats().held_bytes, stats().buffers), (3996, 1));
    let g: Vec<f32> = empty(999);
    assert_eq!(stats().held_bytes, 0, "the f32 buffer was the one kept");
    give(g);
    give(vec![0f32; 2000]);
    assert_eq!(
        stats().held_bytes,
        3996,
        "8000 bytes exceed the limit alone"
    );
    set_limit(0);
    assert_eq!(stats().held_bytes, 0);
    set_limit(DEFAULT_LIMIT);
    clear();
}
