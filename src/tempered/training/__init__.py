"""Training: one minibatch loop (loop.py) that every method runs, with what it minimises plugged in.

- loop.py: the loop (epoch order from the training generator, the optimiser step, divergence check, monitor-set
  metrics, one history row per epoch) and the Objective it calls on each minibatch;
- objectives.py: cross-entropy at temperature T on hard or soft targets, DeVries & Taylor's learned confidence,
  the sparse-autoencoder objective;
- learned_confidence.py: DeVries & Taylor's confidence loss, its hints and its lambda update;
- madry_pgd.py, szegedy_pools.py: the adversarial hooks (Madry's PGD batches, Szegedy's refreshed pools);
- methods.py: each minibatch method as one call (objective, optimiser, hooks, loop);
- convex.py: full-batch L-BFGS, the one method that is not a minibatch loop;
- inference.py: deployment logits, a teacher's soft labels, classification metrics.

Import by module (tempered.training.methods, ...).
"""
