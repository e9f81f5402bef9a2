// containers — a C++ program using the standard containers, run under the
// profiler by test_realworld; prints a checksum that must not change.
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

int main() {
  unsigned long sum = 0;
  for (int round = 0; round < 5; round++) {
    std::unordered_map<std::string, std::vector<int>> index;
    std::map<int, std::string> ordered;
    std::vector<std::unique_ptr<std::string>> owned;
    for (int i = 0; i < 50000; i++) {
      std::string key = "key-" + std::to_string(i % 7000);
      index[key].push_back(i);
      ordered.emplace(i, key);
      if (i % 3 == 0)
        owned.push_back(std::make_unique<std::string>(key + key));
    }
    for (auto &kv : index)
      sum += kv.second.size() * kv.first.size();
    for (auto &s : owned)
      sum += s->size();
    sum += ordered.size();
  }
  std::printf("%lu\n", sum);
  return 0;
}
