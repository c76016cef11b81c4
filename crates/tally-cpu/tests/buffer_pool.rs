//! The buffer pool on its own, in a process of its own (its state is global, and kernels
//! in other tests would take and return buffers concurrently): exact-size reuse, contents
//! kept for overwrite, zeroing on request, the byte limit and its eviction order.

use tally_cpu::buffers::{
    clear, empty, for_overwrite, give, set_limit, stats, zeroed, DEFAULT_LIMIT,
};

#[test]
fn reuses_exact_sizes_within_the_limit() {
    clear();
    let a: Vec<f32> = zeroed(1000, 0.0);
    let ptr = a.as_ptr();
    give(a);
    assert_eq!(stats().held_bytes, 4000); // 1000 f32
                                          // Same dtype and size: the same buffer, its contents kept for overwrite.
    let b: Vec<f32> = for_overwrite(1000, 7.0);
    assert_eq!(b.as_ptr(), ptr);
    assert!(b.iter().all(|&v| v == 0.0), "old contents, not the fill");
    give(b);
    let mut c: Vec<f32> = empty(1000);
    assert_eq!((c.as_ptr(), c.len(), c.capacity()), (ptr, 0, 1000));
    c.resize(1000, 3.0);
    give(c);
    // zeroed writes every element.
    let d: Vec<f32> = zeroed(1000, 0.0);
    assert_eq!(d.as_ptr(), ptr);
    assert!(d.iter().all(|&v| v == 0.0));
    give(d);
    // Another dtype or size does not match.
    let e: Vec<u32> = empty(1000);
    assert_ne!(e.as_ptr() as usize, ptr as usize);
    let f: Vec<f32> = empty(999);
    assert_ne!(f.as_ptr(), ptr);
    // Types a storage cannot hold are never pooled.
    give(vec![0usize; 1000]);
    assert_eq!(stats().held_bytes, 4000);
    let hits = stats().hits;
    // Over the limit, the least recently used sizes go first; a buffer larger than the
    // limit is freed.
    set_limit(6000);
    give(vec![0u32; 1000]);
    assert_eq!(
        (stats().held_bytes, stats().buffers),
        (4000, 1),
        "f32 evicted"
    );
    let g: Vec<u32> = empty(1000);
    assert_eq!(stats().hits, hits + 1, "the u32 buffer is the one held");
    give(g);
    give(vec![0f32; 2000]);
    assert_eq!(
        stats().held_bytes,
        4000,
        "8000 bytes exceed the limit alone"
    );
    set_limit(0);
    assert_eq!(stats().held_bytes, 0, "a limit of 0 turns pooling off");
    set_limit(DEFAULT_LIMIT);
    clear();
}
