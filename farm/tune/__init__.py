"""Growing the planned trials with Ray Tune: the trainable, the schedulers (ASHA and PBT per
group), the runner, the progress table the terminal shows, and the one door to Ray's private
APIs. The only package that knows Ray Tune."""
