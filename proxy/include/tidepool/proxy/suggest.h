// "Did you mean": the closest known name to a misspelt one (config keys and values, command
// names and options), by edit distance.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tidepool::proxy {

// Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of two
// neighbours each cost 1, so "hearbeat" → "heartbeat" and "drop_oldest" → "drop-oldest" are 1.
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate nearest to `word`, when it is close: at most a third of the candidate's
// length in edits (at least 1), so "drop-all" suggests nothing rather than a wrong guess.
// Ties go to the first candidate. Never `word` itself.
std::optional<std::string> closest_name(std::string_view word,
                                        const std::vector<std::string>& candidates);

// " (did you mean \"NAME\"?)" or "" when nothing is close.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace tidepool::proxy
