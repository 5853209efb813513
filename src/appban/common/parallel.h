// Runs fn(i) for i in [0, count) on up to `threads` worker threads (0 = all cores). Work items are
// claimed one at a time from a shared counter, so slow items do not hold up a fixed slice. fn must
// be safe to call concurrently for different i. Exceptions escaping fn terminate (parts return
// errors as values).
#pragma once

#include <cstddef>
#include <functional>

namespace appban {

void ParallelFor(size_t count, unsigned threads, const std::function<void(size_t)>& fn);

}  // namespace appban
