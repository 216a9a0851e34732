"""The token endpoint's grants, one module per specification.

:mod:`.grant` defines what a grant is and the request it is handed; :mod:`.table` lists the
grants by ``grant_type``. A new grant is a new module here and one line in the table
(decision 0027).
"""
