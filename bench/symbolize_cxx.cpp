// symbolize_cxx — a C++ object for symbolize_cost's inline-chain figures:
// one translation unit that instantiates the standard containers and
// algorithms for two element types, built at -O2 -g, so that its DWARF
// holds the libstdc++ headers (51k DIEs in one CU) and most of its code
// is inlined calls (~9.5k line-table rows, ~4.5 frames each), as in a C++
// service. symbolize_cost only reads its DWARF; it never runs it.
#include <algorithm>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace {

struct Widget {
  int id;
  std::string name;
  bool operator<(const Widget &o) const { return id < o.id; }
  bool operator==(const Widget &o) const { return id == o.id; }
};

struct WidgetHash {
  size_t operator()(const Widget &w) const { return std::hash<int>()(w.id); }
};

template <typename T> T make(int i);
template <> std::string make<std::string>(int i) { return std::to_string(i); }
template <> Widget make<Widget>(int i) { return Widget{i, std::to_string(i)}; }

template <typename T, typename H = std::hash<T>> size_t exercise(int n) {
  std::vector<T> v;
  std::deque<T> d;
  std::list<T> l;
  std::set<T> s;
  std::map<T, std::vector<T>> m;
  std::unordered_set<T, H> us;
  std::unordered_map<T, std::shared_ptr<T>, H> um;
  std::function<void(const T &)> add = [&](const T &x) {
    v.push_back(x);
    d.push_front(x);
    l.push_back(x);
    s.insert(x);
    m[x].push_back(x);
    us.insert(x);
    um.emplace(x, std::make_shared<T>(x));
  };
  for (int i = 0; i < n; i++)
    add(make<T>(n - i));
  std::sort(v.begin(), v.end());
  std::stable_sort(d.begin(), d.end());
  l.sort();
  l.unique();
  auto it = std::lower_bound(v.begin(), v.end(), make<T>(n / 2));
  v.erase(std::unique(v.begin(), v.end()), v.end());
  std::ostringstream os;
  os << v.size() << ' ' << d.size() << ' ' << s.size();
  return os.str().size() + m.size() + us.size() + um.size() +
         static_cast<size_t>(it - v.begin()) + l.size();
}

} // namespace

extern "C" size_t symbolize_cxx_run(int n) {
  return exercise<std::string>(n) + exercise<Widget, WidgetHash>(n);
}
