// heapprof_labels.hpp — C++ scopes for heapprof's labels (heapprof.h).
//
//   void handle(const Request &r) {
//     heapprof::label_scope tenant("tenant", r.tenant);    // pushed here,
//     heapprof::label_scope endpoint("endpoint", "get");
//     ...                                                  // popped at '}'
//   }
//
// A scope's end puts the thread's labels back exactly as they were at its
// start (a token, heapprof_label_save/restore), so a push that failed
// (bad key, a limit reached; see error()) changes nothing, and pushes
// left unpopped inside the scope end with it. Scopes belong to the
// constructing thread and must end on it, innermost first, which is what
// C++'s scoping gives; they cannot be copied or moved. Name the object:
// `heapprof::label_scope("tenant", t);` alone is a temporary that ends at
// the semicolon (C++20 compilers warn about it).
//
// heapprof::label_attach carries labels to another thread: save them
// where the work is queued, attach them where it runs.
//
//   auto token = heapprof_label_save();
//   pool.submit([token] { heapprof::label_attach a(token); work(); });
//
// Header-only, C++11, no exceptions, no allocation.
#ifndef HEAPPROF_LABELS_HPP
#define HEAPPROF_LABELS_HPP

#include <string>

#include "heapprof.h"

namespace heapprof {

#if __cplusplus >= 202002L
#define HEAPPROF_NODISCARD [[nodiscard]]
#else
#define HEAPPROF_NODISCARD
#endif

class label_scope {
 public:
  HEAPPROF_NODISCARD label_scope(const char *key, const char *value) noexcept
      : before_(heapprof_label_save()), rc_(heapprof_label_push(key, value)) {}
  HEAPPROF_NODISCARD label_scope(const std::string &key,
                                 const std::string &value) noexcept
      : label_scope(key.c_str(), value.c_str()) {}
  ~label_scope() { heapprof_label_restore(before_, nullptr); }
  label_scope(const label_scope &) = delete;
  label_scope &operator=(const label_scope &) = delete;

  // 0, or the HEAPPROF_E* code of the push (heapprof_strerror).
  int error() const noexcept { return rc_; }
  explicit operator bool() const noexcept { return rc_ == 0; }

 private:
  heapprof_label_token_t before_;
  int rc_;
};

class label_attach {
 public:
  HEAPPROF_NODISCARD explicit label_attach(heapprof_label_token_t token) noexcept
      : rc_(heapprof_label_restore(token, &prev_)) {}
  ~label_attach() {
    if (rc_ == 0)
      heapprof_label_restore(prev_, nullptr);
  }
  label_attach(const label_attach &) = delete;
  label_attach &operator=(const label_attach &) = delete;

  int error() const noexcept { return rc_; }
  explicit operator bool() const noexcept { return rc_ == 0; }

 private:
  heapprof_label_token_t prev_ = 0;
  int rc_;
};

}  // namespace heapprof

#undef HEAPPROF_NODISCARD

#endif  // HEAPPROF_LABELS_HPP
