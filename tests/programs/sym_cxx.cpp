// sym_cxx — C++ allocation paths whose names need demangling and whose
// call sites sit in inlined library code, for
// tests/integration/symbols/sym_cxx.py (built -O2 -g).
//
// Four sites, each kept live until exit:
//   - std::vector<app::Widget>::push_back growing inside a lambda called
//     through std::function (by run, which the optimiser cannot see into): operator new is called from
//     _M_realloc_insert, with __new_allocator::allocate,
//     allocator_traits::allocate and _Vector_base::_M_allocate inlined
//     into it;
//   - app::make_buffer<T>, a function template of ours;
//   - app::operator<<(app::Log&, const char*), an operator of ours that
//     mallocs a copy of its string;
//   - app::Registry::add, a member function.
// The test finds lines by their markers: DECL:x is the line that declares
// x, LINE:x the line of the allocating call inside x.
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

namespace app {

struct Widget {
  long id;
  char payload[40];
};

template <typename T>
__attribute__((noinline)) T *make_buffer(std::size_t n) // DECL:make_buffer
{
  T *p = new T[n]; // LINE:make_buffer
  for (std::size_t i = 0; i < n; i++)
    p[i] = T(i);
  return p;
}

struct Log {
  char *lines[64];
  int n;
};

__attribute__((noinline)) Log &operator<<(Log &log, const char *s) // DECL:operator<<
{
  std::size_t len = std::strlen(s) + 1;
  char *copy = static_cast<char *>(std::malloc(len)); // LINE:operator<<
  if (!copy)
    std::abort();
  std::memcpy(copy, s, len);
  log.lines[log.n++ & 63] = copy;
  return log;
}

struct Registry {
  std::vector<long *> items;
  __attribute__((noinline)) void add(long v);
};

// DWARF gives a member defined out of its class the definition's line.
__attribute__((noinline)) void Registry::add(long v) // DECL:Registry::add
{
  long *p = new long[4]; // LINE:Registry::add
  p[0] = v;
  items.reserve(64);
  items.push_back(p);
}

} // namespace app

// Never freed, so that in-use profiles show them too.
static std::vector<app::Widget> *widgets = new std::vector<app::Widget>();
static int *volatile ints;
static double *volatile doubles;
static app::Log log_lines;
static app::Registry *registry = new app::Registry();

// Out of sight of the optimiser, so that the call goes through
// std::function's invoker (std::_Function_handler::_M_invoke) rather than
// the lambda being inlined into main; using the result after the call
// keeps it a call (not a jump that would leave run off the stack).
static volatile long runs;
__attribute__((noipa)) static void run(const std::function<long()> &f) // DECL:run
{
  runs = f(); // LINE:run
}

int main() // DECL:main
{
  // Not inlined into the invoker: a lambda's operator() has no linkage name
  // in gcc's DWARF, only its ELF symbol (_ZZ4mainENKUlvE_clEv) names it.
  // It returns int to a std::function<long()>, so the invoker widens the
  // result after the call: it stays a call, and the invoker on the stack.
  std::function<long()> fill = [&]() __attribute__((noinline)) -> int {
    for (long i = 0; i < 1000; i++)
      widgets->push_back(app::Widget{i, {}}); // LINE:lambda
    return static_cast<int>(widgets->size());
  };
  run(fill); // LINE:main
  ints = app::make_buffer<int>(300);
  doubles = app::make_buffer<double>(200);
  log_lines << "one" << "two" << "three";
  for (int i = 0; i < 10; i++)
    registry->add(i);
  return widgets->size() == 1000 ? 0 : 1;
}
