// PPO's minibatch and rollout-step operators on the fused LSTM cell (see ppo_cell.h); torch.ops.rlgru_ppo_lstm.

#define RLGRU_CELL_SOURCE "fused_lstm.cpp"
#define RLGRU_PPO_OPS rlgru_ppo_lstm
#include "ppo_cell.h"
