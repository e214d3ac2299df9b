//! [`RestoraBackend`] for `Autodiff<B>`: each convolution is one node of the graph whose
//! backward calls the inner backend's gradient kernels (Burn's `burn-autodiff` conv2d, with
//! `B`'s kernels in place of Burn's transposed and per-group convolutions).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::Autodiff;
use burn::tensor::ops::FloatTensor;

use super::{RestoraBackend, Wanted};

/// The backward of one 3×3 convolution: which of the two kinds, and its saved inputs.
#[derive(Debug)]
struct Conv3x3Backward {
    depthwise: bool,
}

impl<B: RestoraBackend> Backward<B, 2> for Conv3x3Backward {
    type State = (NodeId, NodeId);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
        let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight_state);
        let wanted = Wanted { x: node_x.is_some(), weight: node_weight.is_some() };
        let (grad_x, grad_weight) = if self.depthwise {
            B::depthwise_conv3x3_backward(x, weight, grad, wanted)
        } else {
            B::conv3x3_backward(x, weight, grad, wanted)
        };
        if let (Some(node), Some(g)) = (node_x, grad_x) {
            grads.register::<B>(node.id, g);
        }
        if let (Some(node), Some(g)) = (node_weight, grad_weight) {
            grads.register::<B>(node.id, g);
        }
    }
}

fn record<B: RestoraBackend, C: CheckpointStrategy>(
    depthwise: bool,
    x: FloatTensor<Autodiff<B, C>>,
    weight: FloatTensor<Autodiff<B, C>>,
) -> FloatTensor<Autodiff<B, C>> {
    let forward = |x, weight| if depthwise { B::depthwise_conv3x3(x, weight) } else { B::conv3x3(x, weight) };
    let backward = Conv3x3Backward { depthwise };
    match backward.prepare::<C>([x.node.clone(), weight.node.clone()]).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let x_state = prep.checkpoint(&x);
            let weight_state = prep.checkpoint(&weight);
            prep.finish((x_state, weight_state), forward(x.primitive, weight.primitive))
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(x.primitive, weight.primitive)),
    }
}

impl<B: RestoraBackend, C: CheckpointStrategy> RestoraBackend for Autodiff<B, C> {
    fn depthwise_conv3x3(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        record::<B, C>(true, x, weight)
    }

    fn conv3x3(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        record::<B, C>(false, x, weight)
    }

    // The backward methods are only called on the inner backend (second-order gradients are
    // not needed); their defaults stay correct for `Autodiff<B>` itself.
}
