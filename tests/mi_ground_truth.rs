//! MI estimators against ground truth: correlated Gaussians, whose MI is −(d/2)·ln(1−ρ²).
use tch::nn::VarStore;
use tch::{Device, Tensor};
use wcmi::data::synthetic::CorrelatedGaussians;
use wcmi::mi::bounds::{estimate, Bound};
use wcmi::mi::critic_training::{held_out, train_critic, CriticConfig};
use wcmi::nn::critic::SeparableCritic;
use wcmi::nn::vector_critic::VectorCritic;

const DIM: usize = 4;

/// libtorch's random generator and thread count are global to the process, and the test
/// harness runs these tests on parallel threads: unserialised, one test's draws and thread
/// count leaked into another's, whose estimate then depended on scheduling (the DV check at
/// 2 nats failed once at 1.793).
static ONE_TEST_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    ONE_TEST_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Trains a small separable critic with `bound` and returns the held-out estimate.
fn estimate_gaussians(truth: &CorrelatedGaussians, bound: Bound) -> f64 {
    tch::manual_seed(0);
    let (x, y) = truth.sample(40_000, 1);
    let (x_test, y_test) = truth.sample(10_240, 2);
    let config = CriticConfig {
        bound,
        epochs: 10,
        batch_size: 256,
        lr: 1e-3,
        test_batches: 40,
        seed: 3,
    };
    let vs = VarStore::new(Device::Cpu);
    let critic = VectorCritic::new(&vs.root(), DIM as i64, DIM as i64, 128, 32);
    let train: Vec<i64> = (0..40_000).collect();
    let mut train_estimate = |index: &Tensor| {
        Ok(estimate(
            bound,
            &critic.scores(&x.index_select(0, index), &y.index_select(0, index), true),
        ))
    };
    train_critic(&vs, &train, &config, &mut train_estimate).unwrap();
    let test: Vec<i64> = (0..10_240).collect();
    let mut test_estimate = |index: &Tensor| {
        let u = tch::no_grad(|| {
            critic.scores(
                &x_test.index_select(0, index),
                &y_test.index_select(0, index),
                false,
            )
        });
        Ok(estimate(bound, &u).double_value(&[]))
    };
    held_out(&test, &config, &mut test_estimate).unwrap().0
}

#[test]
fn dv_and_infonce_are_within_ten_percent_of_the_truth() {
    let _alone = alone();
    tch::set_num_threads(2);
    for mi in [0.5, 1.0, 2.0] {
        let truth = CorrelatedGaussians::with_mi(DIM, mi);
        for bound in [Bound::Dv, Bound::Infonce] {
            let got = estimate_gaussians(&truth, bound);
            eprintln!("{bound:?}: estimated {got:.3} nats, true {mi}");
            assert!(
                (got - mi).abs() <= 0.1 * mi,
                "{bound:?}: estimated {got:.3} nats, true {mi}"
            );
        }
    }
}

#[test]
fn jsd_ranks_three_correlations_correctly() {
    let _alone = alone();
    tch::set_num_threads(2);
    let values: Vec<f64> = [0.3, 0.6, 0.9]
        .iter()
        .map(|&rho| estimate_gaussians(&CorrelatedGaussians { dim: DIM, rho }, Bound::Jsd))
        .collect();
    assert!(values[0] < values[1] && values[1] < values[2], "{values:?}");
}

/// On the Gaussian mixture with g(x) = sign(θᵀx), whose gradient is zero, PGD finds no
/// vulnerability at all while the black-box search finds it clearly above zero. The estimate is
/// the difference of two DV lower bounds whose biases differ by a few hundredths of a nat from
/// one CPU's kernels to another's (0.110 nats on one CI machine against the exact 0.081 at
/// ε = 0.2, Theorem 3.2), so the upper check allows twice the exact value: enough to catch a
/// search that leaves the ε-ball, whose estimate would approach H(g(X)) = ln 2 = 0.69.
#[test]
fn black_box_search_finds_the_vulnerability_pgd_misses() {
    use wcmi::eval::mixture_check::{self, MixtureCheck};
    use wcmi::mi::worst_case::AttackGradient;
    let _alone = alone();
    tch::set_num_threads(1);
    let rows = mixture_check::run(
        &MixtureCheck::default(),
        &[0.2],
        &[AttackGradient::Representation, AttackGradient::BlackBox],
    )
    .unwrap();
    let (pgd, search) = (&rows[0], &rows[1]);
    assert!(pgd.estimated_vulnerability.abs() <= pgd.ci95, "{pgd:?}");
    assert!(
        search.estimated_vulnerability > 3.0 * search.ci95,
        "{search:?}"
    );
    assert!(
        search.estimated_vulnerability <= 2.0 * search.exact_vulnerability,
        "{search:?}"
    );
}
