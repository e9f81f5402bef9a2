// inline_widgets — the C++ half of test_inline: a std::vector<Widget>
// grown by push_back inside a lambda that a std::function holds. Built at
// -O2 -g, the call of operator new that the first push_back makes sits in
// vector::_M_realloc_insert under the inlined allocate calls of the
// library's headers, which is the chain the test checks.
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <new>
#include <string>
#include <vector>

struct Widget {
  int id;
  std::string name;
};

static bool recording;
static std::uintptr_t new_return;

// The global allocation functions are replaced so that the call site of
// operator new can be recorded (noinline: the return address must be the
// caller's). delete is replaced with them, so that every block goes back
// to the allocator it came from, also under a sanitizer.
__attribute__((noinline)) void *operator new(std::size_t bytes) {
  if (recording && new_return == 0)
    new_return = reinterpret_cast<std::uintptr_t>(__builtin_return_address(0));
  if (void *p = std::malloc(bytes ? bytes : 1))
    return p;
  throw std::bad_alloc();
}

void operator delete(void *p) noexcept { std::free(p); }
void operator delete(void *p, std::size_t) noexcept { std::free(p); }

// The return address of the first operator new that push_back makes.
extern "C" std::uintptr_t inline_widgets_push(void) {
  std::vector<Widget> widgets;
  std::function<void(int)> add = [&widgets](int id) {
    widgets.push_back(Widget{id, "w"});
  };
  new_return = 0;
  recording = true;
  add(1);
  recording = false;
  return widgets.size() == 1 ? new_return : 0;
}
