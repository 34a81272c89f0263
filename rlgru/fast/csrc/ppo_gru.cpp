// PPO's minibatch and rollout-step operators on the fused GRU cell (see ppo_cell.h); torch.ops.rlgru_ppo_gru.

#define RLGRU_CELL_SOURCE "fused_gru.cpp"
#define RLGRU_PPO_OPS rlgru_ppo_gru
#include "ppo_cell.h"
