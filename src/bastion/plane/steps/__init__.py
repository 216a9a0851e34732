"""The steps of the command pipeline, in the order ``bastion.plane.pipeline.STEPS`` runs
them. Each takes the call's state (``bastion.plane.call.Call``), adds what it finds, or
raises the error the pipeline's table documents; none imports an HTTP framework."""
