package liminal;

import io.trino.Session;
import io.trino.plugin.memory.MemoryPlugin;
import io.trino.plugin.tpch.TpchPlugin;
import io.trino.testing.DistributedQueryRunner;

import java.util.Map;

import static io.trino.testing.TestingSession.testSessionBuilder;

/**
 * TrinoServer runs a one-node Trino coordinator on 127.0.0.1:PORT with the
 * tpch and memory catalogs until it is killed. Usage: TrinoServer PORT.
 * It prints "LIMINAL_TRINO_READY <url>" once queries can run.
 */
public final class TrinoServer
{
    private TrinoServer() {}

    public static void main(String[] args)
            throws Exception
    {
        int port = Integer.parseInt(args[0]);
        Session session = testSessionBuilder().setCatalog("tpch").setSchema("tiny").build();
        DistributedQueryRunner runner = DistributedQueryRunner.builder(session)
                .setNodeCount(1)
                .setCoordinatorProperties(Map.of(
                        "http-server.http.port", Integer.toString(port),
                        "query.client.timeout", "5m"))
                .build();
        runner.installPlugin(new TpchPlugin());
        runner.createCatalog("tpch", "tpch");
        runner.installPlugin(new MemoryPlugin());
        runner.createCatalog("memory", "memory", Map.of("memory.max-data-per-node", "1GB"));
        Runtime.getRuntime().addShutdownHook(new Thread(runner::close));
        System.out.println("LIMINAL_TRINO_READY " + runner.getCoordinator().getBaseUrl());
        System.out.flush();
        Thread.currentThread().join();
    }
}
