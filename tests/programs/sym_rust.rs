// sym_rust — Rust allocations for tests/integration/symbols/sym_rust.py,
// built twice with Debian's rustc: -C symbol-mangling-version=v0 and the
// legacy mangling. Rust's default global allocator (System) calls malloc,
// so heapprof sees every Vec buffer. DECL:x marks the line that declares
// x, LINE:x the allocating line inside it. Everything stays allocated
// until exit, when heapprof writes HEAPPROF_OUT.

pub struct Cache {
    rows: Vec<Vec<u64>>,
}

#[inline(never)]
pub fn grow_cache(n: usize) -> Vec<u64> // DECL:grow_cache
{
    let mut v: Vec<u64> = Vec::with_capacity(n); // LINE:grow_cache
    for i in 0..n {
        v.push(i as u64 * 3);
    }
    v
}

impl Cache {
    #[inline(never)]
    pub fn add_row(&mut self, n: usize) // DECL:Cache::add_row
    {
        let row = grow_cache(n); // LINE:Cache::add_row
        self.rows.push(row);
    }
}

fn main() {
    let mut cache = Cache { rows: Vec::with_capacity(64) };
    for i in 0..20 {
        cache.add_row(100 + i);
    }
    let total: u64 = cache.rows.iter().map(|r| r.iter().sum::<u64>()).sum();
    std::mem::forget(cache);
    std::process::exit(if total > 0 { 0 } else { 1 });
}
