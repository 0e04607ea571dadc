#include "pipelines/recommend/interactions.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "host/core/error.h"
#include "host/core/math.h"

namespace tessera::recommend {
namespace {

std::vector<int64_t> distinct(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

int32_t dense(const std::vector<int64_t>& ids, int64_t raw) {
  return static_cast<int32_t>(std::lower_bound(ids.begin(), ids.end(), raw) - ids.begin());
}

}  // namespace

Interactions index_interactions(const std::vector<data::Rating>& rows) {
  Interactions d;
  std::vector<int64_t> users, items;
  users.reserve(rows.size());
  items.reserve(rows.size());
  for (const auto& r : rows) {
    users.push_back(r.user);
    items.push_back(r.item);
  }
  d.user_ids = distinct(std::move(users));
  d.item_ids = distinct(std::move(items));
  if (d.user_ids.size() > INT32_MAX || d.item_ids.size() > INT32_MAX)
    TESSERA_THROW(Data, "more than 2^31 distinct users or items");
  d.user.reserve(rows.size());
  d.item.reserve(rows.size());
  d.rating.reserve(rows.size());
  d.timestamp.reserve(rows.size());
  for (const auto& r : rows) {
    d.user.push_back(dense(d.user_ids, r.user));
    d.item.push_back(dense(d.item_ids, r.item));
    d.rating.push_back(r.rating);
    d.timestamp.push_back(r.timestamp);
  }
  return d;
}

Split random_split(int64_t rows, double test_fraction, uint64_t seed) {
  std::vector<int64_t> perm(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) perm[i] = i;
  // Fisher-Yates with a counter-based generator: the same split on every platform.
  for (int64_t i = rows - 1; i > 0; --i) {
    const uint64_t r = math::mix64(seed ^ math::mix64(static_cast<uint64_t>(i) + 0x5eed));
    std::swap(perm[i], perm[r % static_cast<uint64_t>(i + 1)]);
  }
  const auto n_test = static_cast<int64_t>(std::llround(static_cast<double>(rows) * test_fraction));
  Split s;
  s.test.assign(perm.begin(), perm.begin() + n_test);
  s.train.assign(perm.begin() + n_test, perm.end());
  std::sort(s.test.begin(), s.test.end());
  std::sort(s.train.begin(), s.train.end());
  return s;
}

Split leave_last_out(const Interactions& d) {
  const int64_t U = d.num_users();
  std::vector<int64_t> last(static_cast<size_t>(U), -1), count(static_cast<size_t>(U), 0);
  for (int64_t r = 0; r < d.size(); ++r) {
    const int32_t u = d.user[r];
    ++count[u];
    if (last[u] < 0 || d.timestamp[r] >= d.timestamp[last[u]]) last[u] = r;
  }
  std::vector<bool> held(static_cast<size_t>(d.size()), false);
  for (int64_t u = 0; u < U; ++u)
    if (count[u] >= 2) held[last[u]] = true;
  Split s;
  for (int64_t r = 0; r < d.size(); ++r) (held[r] ? s.test : s.train).push_back(r);
  return s;
}

bool UserItems::contains(int32_t user, int32_t item) const {
  const auto b = items.begin() + offsets[user], e = items.begin() + offsets[user + 1];
  return std::binary_search(b, e, item);
}

UserItems user_items(const Interactions& d, const std::vector<int64_t>& rows) {
  const int64_t U = d.num_users();
  UserItems ui;
  ui.offsets.assign(static_cast<size_t>(U + 1), 0);
  for (int64_t r : rows) ++ui.offsets[d.user[r] + 1];
  for (int64_t u = 0; u < U; ++u) ui.offsets[u + 1] += ui.offsets[u];
  ui.items.resize(rows.size());
  std::vector<int64_t> fill(ui.offsets.begin(), ui.offsets.end() - 1);
  for (int64_t r : rows) ui.items[fill[d.user[r]]++] = d.item[r];
  // Sort and de-duplicate each user's list in place, compacting.
  int64_t w = 0;
  std::vector<int64_t> new_offsets(static_cast<size_t>(U + 1), 0);
  for (int64_t u = 0; u < U; ++u) {
    auto b = ui.items.begin() + ui.offsets[u], e = ui.items.begin() + ui.offsets[u + 1];
    std::sort(b, e);
    e = std::unique(b, e);
    for (auto it = b; it != e; ++it) ui.items[w++] = *it;
    new_offsets[u + 1] = w;
  }
  ui.items.resize(static_cast<size_t>(w));
  ui.offsets = std::move(new_offsets);
  return ui;
}

std::vector<int32_t> sample_negatives(const Interactions& d, const std::vector<int64_t>& test,
                                      const UserItems& all, int64_t n, uint64_t seed) {
  const int64_t I = d.num_items();
  std::vector<int32_t> out;
  out.reserve(test.size() * static_cast<size_t>(n));
  for (int64_t r : test) {
    const int32_t u = d.user[r];
    if (I - all.count(u) < n)
      TESSERA_THROW(Data, "user " << d.user_ids[u] << " has interacted with " << all.count(u)
                                  << " of " << I << " items: fewer than " << n
                                  << " are left to sample as negatives");
    std::mt19937_64 gen(math::mix64(seed ^ math::mix64(static_cast<uint64_t>(u) + 1)));
    std::vector<int32_t> chosen;
    while (static_cast<int64_t>(chosen.size()) < n) {
      const auto item = static_cast<int32_t>(gen() % static_cast<uint64_t>(I));
      if (all.contains(u, item) || std::find(chosen.begin(), chosen.end(), item) != chosen.end())
        continue;
      chosen.push_back(item);
    }
    out.insert(out.end(), chosen.begin(), chosen.end());
  }
  return out;
}

}  // namespace tessera::recommend
