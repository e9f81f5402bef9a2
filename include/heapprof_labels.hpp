// heapprof_labels.hpp — C++ scopes for heapprof's labels (heapprof.h).
//
//   void handle(const Request &r) {
//     heapprof::label_scope tenant("tenant", r.tenant);    // pushed here,
//     heapprof::label_scope endpoint("endpoint", "get");
//     ...                                                  // popped at '}'
//   }
//
// A scope pops only what its own push put there: a push that failed
// (bad key, a limit reached; see error()) leaves the labels as they were
// and its destructor does nothing. Scopes are pushes on the constructing
// thread and must end on it, innermost first, which is what C++'s scoping
// gives; they cannot be copied or moved.
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

class label_scope {
 public:
  label_scope(const char *key, const char *value) noexcept
      : rc_(heapprof_label_push(key, value)) {}
  label_scope(const std::string &key, const std::string &value) noexcept
      : label_scope(key.c_str(), value.c_str()) {}
  ~label_scope() {
    if (rc_ == 0)
      heapprof_label_pop();
  }
  label_scope(const label_scope &) = delete;
  label_scope &operator=(const label_scope &) = delete;

  // 0, or the HEAPPROF_E* code of the push (heapprof_strerror).
  int error() const noexcept { return rc_; }
  explicit operator bool() const noexcept { return rc_ == 0; }

 private:
  int rc_;
};

class label_attach {
 public:
  explicit label_attach(heapprof_label_token_t token) noexcept
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

#endif  // HEAPPROF_LABELS_HPP
