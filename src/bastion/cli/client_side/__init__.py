"""The client commands (``connect``, ``disconnect``, ``auth``, ``profile``, ``shell``,
``completion``, and ``bastion SERVICE COMMAND`` in ``services/``): they reach a server
through ``bastion.client`` only, and import no server part (decision 0031)."""
