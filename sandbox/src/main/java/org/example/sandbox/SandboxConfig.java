package org.example.sandbox;

import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.binary.api.IBinaryStorageSvc;
import ca.uhn.fhir.jpa.binstore.MemoryBinaryStorageSvcImpl;
import ca.uhn.fhir.jpa.config.HapiJpaConfig;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.dialect.HapiFhirH2Dialect;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import jakarta.persistence.EntityManagerFactory;
import java.util.Properties;
import javax.sql.DataSource;
import org.h2.jdbcx.JdbcConnectionPool;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.context.annotation.Primary;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;

/**
 * The Spring context of the sandbox: HAPI's own R4 JPA server configuration plus the few beans
 * HAPI leaves to the application (database, JPA plumbing, storage settings, binary storage).
 */
@Configuration
@Import({
  JpaR4Config.class,
  HapiJpaConfig.class,
  // Batch2 runs HAPI's background jobs (terminology, reindex, $delete-expunge, ...).
  JpaBatch2Config.class,
  Batch2JobsConfig.class,
  // In-process message channels (LinkedBlockingQueue) that Batch2 sends its work through.
  SubscriptionChannelConfig.class,
  // The thread pools of transaction processing.
  ThreadPoolFactoryConfig.class
})
public class SandboxConfig {

  /** Search results expire after this long; paging links of a test session stay valid. */
  private static final long SEARCH_RESULTS_EXPIRE_MILLIS = 30 * 60 * 1000L;

  /**
   * By default a fresh in-memory H2 database per start: tests never see a previous run's data,
   * and there is no file to clean up. DB_CLOSE_DELAY=-1 keeps it while the pool has no open
   * connection. With the system property {@code sandbox.dataDir} the database is a file there
   * instead, kept across a stop and a start (for tests of an EHR that goes down and comes back).
   */
  @Bean(destroyMethod = "dispose")
  public JdbcConnectionPool dataSource() {
    String dataDir = System.getProperty("sandbox.dataDir", "");
    String url =
        dataDir.isEmpty()
            ? "jdbc:h2:mem:sandbox;DB_CLOSE_DELAY=-1"
            : "jdbc:h2:file:" + dataDir + "/sandbox";
    JdbcConnectionPool pool = JdbcConnectionPool.create(url, "sa", "");
    // HAPI runs searches on background threads next to the request's own transaction.
    pool.setMaxConnections(20);
    return pool;
  }

  @Bean
  public JpaStorageSettings storageSettings() {
    JpaStorageSettings settings = new JpaStorageSettings();
    // So that tests can clean up: conditional deletes of several matches, $expunge.
    settings.setAllowMultipleDelete(true);
    settings.setExpungeEnabled(true);
    settings.setDeleteExpungeEnabled(true);
    // Mapped resources may point at absolute URLs of other systems.
    settings.setAllowExternalReferences(true);
    // HAPI reuses a cached result for an identical search for 60 s by default, so a search
    // right after a write can miss that write: wrong for tests, which search after writing.
    settings.setReuseCachedSearchResultsForMillis(null);
    settings.setExpireSearchResultsAfterMillis(SEARCH_RESULTS_EXPIRE_MILLIS);
    // No Hibernate Search / Lucene: searches run on the database indexes only.
    settings.setAdvancedHSearchIndexing(false);
    settings.setHibernateSearchIndexSearchParams(false);
    settings.setStoreResourceInHSearchIndex(false);
    return settings;
  }

  @Bean
  public PartitionSettings partitionSettings() {
    return new PartitionSettings();
  }

  @Bean
  @Primary
  public LocalContainerEntityManagerFactoryBean entityManagerFactory(
      ConfigurableListableBeanFactory beanFactory,
      FhirContext fhirContext,
      JpaStorageSettings storageSettings,
      DataSource dataSource) {
    LocalContainerEntityManagerFactoryBean factory =
        HapiEntityManagerFactoryUtil.newEntityManagerFactory(
            beanFactory, fhirContext, storageSettings);
    factory.setPersistenceUnitName("HAPI_SANDBOX_PU");
    factory.setDataSource(dataSource);
    Properties jpa = new Properties();
    jpa.put("hibernate.dialect", HapiFhirH2Dialect.class.getName());
    // Creates the schema in the empty database at start; nothing to migrate.
    jpa.put("hibernate.hbm2ddl.auto", "update");
    jpa.put("hibernate.search.enabled", "false");
    jpa.put("hibernate.format_sql", "false");
    jpa.put("hibernate.show_sql", "false");
    factory.setJpaProperties(jpa);
    return factory;
  }

  @Bean
  @Primary
  public JpaTransactionManager transactionManager(EntityManagerFactory entityManagerFactory) {
    return new JpaTransactionManager(entityManagerFactory);
  }

  /** Binary content (Binary resources, large attachments) kept in memory, like the database. */
  @Bean
  public IBinaryStorageSvc binaryStorageSvc() {
    return new MemoryBinaryStorageSvcImpl();
  }
}
